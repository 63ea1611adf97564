-- End-to-end specs against the real server on a copy of tests/fixture.
-- Server: $SEMCODE_SERVER (an executable, optionally followed by arguments; "serve" is appended),
-- default <repo>/.venv/bin/semcode.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")

local TIMEOUT = tonumber(vim.env.SEMCODE_TEST_TIMEOUT or "") or 120000

local repo = vim.fs.dirname(vim.fs.dirname(T.root))
local server = vim.env.SEMCODE_SERVER
if not server or server == "" then
  server = repo .. "/.venv/bin/semcode"
end
local cmd = vim.split(server, "%s+", { trimempty = true })
cmd[#cmd + 1] = "serve"

-- The index and model cache go to a temp dir unless the runner chose one.
local tmp = vim.fn.tempname()
vim.fn.mkdir(tmp, "p")
if not vim.env.SEMCODE_CACHE_DIR or vim.env.SEMCODE_CACHE_DIR == "" then
  vim.env.SEMCODE_CACHE_DIR = tmp .. "/cache"
end

-- Work on a copy: the checkout's own .git must not become the workspace root.
local ws = tmp .. "/workspace"
vim.fn.mkdir(ws, "p")
vim.system({ "cp", "-R", T.fixture .. "/.", ws }):wait()
ws = vim.uv.fs_realpath(ws)
vim.fn.chdir(ws)
T.log("# server: " .. table.concat(cmd, " "))
T.log("# workspace: " .. ws)
T.log("# SEMCODE_CACHE_DIR: " .. vim.env.SEMCODE_CACHE_DIR)

local semcode = require("semcode")

-- Everything the server reports through LspProgress, and the statusline text after each.
local progress = {}
local statuses = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    local client = vim.lsp.get_client_by_id(ev.data.client_id)
    local value = ev.data.params and ev.data.params.value or {}
    if client and client.name == "semcode" then
      progress[#progress + 1] = { kind = value.kind, title = value.title, pct = value.percentage }
      vim.schedule(function()
        statuses[#statuses + 1] = semcode.status()
      end)
      if vim.env.SEMCODE_TEST_VERBOSE then
        T.log(
          ("  progress %s %s %s"):format(
            value.kind,
            value.title or value.message or "",
            value.percentage or ""
          )
        )
      end
    end
  end,
})

---@param kind string
---@param from? integer
local function count_progress(kind, from)
  local n = 0
  for i = from or 1, #progress do
    if progress[i].kind == kind then
      n = n + 1
    end
  end
  return n
end

-- workspace/configuration requests and Neovim's answers
local config_answers = {}
local default_configuration = vim.lsp.handlers["workspace/configuration"]
vim.lsp.handlers["workspace/configuration"] = function(err, params, ctx, ...)
  local result = default_configuration(err, params, ctx, ...)
  config_answers[#config_answers + 1] = { params = params, result = result }
  return result
end

local client ---@type vim.lsp.Client
local exited = false
local seen_files = {} ---@type table<string, true>

---Runs an Ex command that fills quickfix asynchronously and waits for the new list.
---@param ex string|fun()
---@param title_pattern string
---@return table qflist {title, items}
local function qf_after(ex, title_pattern)
  vim.fn.setqflist({}, " ", { title = "before" })
  local before = vim.fn.getqflist({ id = 0 }).id
  local nmsg = #T.messages
  if type(ex) == "function" then
    ex()
  else
    vim.cmd(ex)
  end
  local list = T.wait(TIMEOUT, function()
    for i = nmsg + 1, #T.messages do
      if T.messages[i].level >= vim.log.levels.WARN then
        error("failed: " .. tostring(T.messages[i].msg))
      end
    end
    local qf = vim.fn.getqflist({ id = 0, title = 1, items = 1 })
    if qf.id ~= before and qf.title:find(title_pattern) then
      return qf
    end
  end, "quickfix list " .. title_pattern)
  for _, item in ipairs(list.items) do
    local name = vim.api.nvim_buf_get_name(item.bufnr)
    seen_files[name] = true
    item.filename = name
  end
  if vim.bo.buftype == "quickfix" then
    vim.cmd("cclose")
  end
  return list
end

local function rel(path)
  return path:sub(#ws + 2)
end

local function describe_items(items)
  local out = {}
  for _, it in ipairs(items) do
    out[#out + 1] = ("%s:%d %s"):format(rel(it.filename), it.lnum, it.text)
  end
  return table.concat(out, "\n      ")
end

local ok_setup = T.it("setup attaches the client to a Python buffer", function()
  semcode.setup({
    cmd = cmd,
    picker = "quickfix",
    settings = { logLevel = "debug", exclude = { "*.generated.js" } },
  })
  vim.cmd("filetype on")
  vim.cmd.edit(ws .. "/python/text.py")
  client = T.wait(30000, function()
    local c = vim.lsp.get_clients({ name = "semcode", bufnr = 0 })[1]
    return c and c.initialized and c
  end, "an initialized semcode client attached to text.py")
  T.eq(client.root_dir, ws)
  T.eq(semcode.get_client(), client)
  -- a second buffer of another filetype reuses the client
  vim.cmd.edit(ws .. "/js/strings.js")
  T.wait(10000, function()
    return vim.lsp.get_clients({ name = "semcode", bufnr = 0 })[1]
  end, "the client attached to strings.js")
  T.eq(#vim.lsp.get_clients({ name = "semcode" }), 1)
  T.eq(vim.lsp.get_clients({ name = "semcode", bufnr = 0 })[1].id, client.id)
end)

if not ok_setup then
  T.finish()
end

T.it("indexing progress is reported and the statusline helper follows it", function()
  T.wait(TIMEOUT, function()
    return count_progress("end") > 0
  end, "the end of the indexing progress")
  T.ok(count_progress("begin") > 0, "a begin was seen")
  local titles = {}
  for _, p in ipairs(progress) do
    if p.kind == "begin" then
      titles[#titles + 1] = p.title
    end
  end
  -- "Indexing workspace" (the server may append the folder name)
  T.ok(
    vim.iter(titles):any(function(t)
      return vim.startswith(t, "Indexing workspace")
    end),
    vim.inspect(titles)
  )
  T.ok(count_progress("report") > 0, "reports were seen")
  T.ok(
    vim.iter(statuses):any(function(t)
      return t:match("^semcode: indexing %d+%%$")
    end),
    "status() showed the percentage: " .. vim.inspect(statuses)
  )
  local text = T.wait(20000, function()
    local s = semcode.status()
    return s:match("^semcode: %d+ chunks$") and s
  end, "status() to show the chunk count, got " .. semcode.status())
  T.ok(tonumber(text:match("(%d+) chunks")) > 0, text)
end)

T.it("settings reach the server (initializationOptions and workspace/configuration)", function()
  T.ok(#config_answers > 0, "the server asked for workspace/configuration")
  local answer = config_answers[#config_answers]
  T.eq(answer.params.items[1].section, "semcode")
  T.eq(answer.result[1].exclude, { "*.generated.js" })
  T.eq(client.config.init_options.exclude, { "*.generated.js" })
  -- the excluded file is not indexed
  local qf = qf_after("Semcode search convert celsius to fahrenheit", "^semcode: convert")
  for _, it in ipairs(qf.items) do
    T.ok(not it.filename:find("generated", 1, true), describe_items(qf.items))
  end
end)

T.it(":Semcode search fills quickfix with the expected file and line", function()
  local qf = qf_after("Semcode search compute the area of a circle", "^semcode: compute")
  T.ok(#qf.items > 0, "results")
  local top = qf.items[1]
  T.eq(rel(top.filename), "python/geometry.py", describe_items(qf.items))
  -- the item points at "def circle_area" (line 6) even when the chunk starts above it
  T.eq({ top.lnum, top.col }, { 6, 5 }, describe_items(qf.items))
  T.ok(top.end_lnum >= 10, "the chunk's end: " .. describe_items(qf.items))
  T.eq(qf.title, "semcode: compute the area of a circle")
end)

T.it(":Semcode search finds JavaScript and Lua code too", function()
  local qf = qf_after("Semcode search retry a download with exponential backoff", "^semcode: retry")
  T.eq(rel(qf.items[1].filename), "js/http.js", describe_items(qf.items))
  T.eq(qf.items[1].lnum, 3, describe_items(qf.items))
  qf = qf_after("Semcode search remove the top element of a stack", "^semcode: remove")
  T.eq(rel(qf.items[1].filename), "lua/stack.lua", describe_items(qf.items))
  T.eq(qf.items[1].lnum, 11, describe_items(qf.items))
end)

T.it(":Semcode search with lang= and limit= filters", function()
  local qf =
    qf_after("Semcode search lang=javascript limit=2 palindrome word", "^semcode: palindrome")
  T.ok(#qf.items >= 1 and #qf.items <= 2, describe_items(qf.items))
  for _, it in ipairs(qf.items) do
    T.ok(it.filename:match("%.js$"), describe_items(qf.items))
  end
end)

T.it(":Semcode similar (symbol under the cursor) returns locations elsewhere", function()
  vim.cmd.edit(ws .. "/python/text.py")
  vim.api.nvim_win_set_cursor(0, { 4, 6 }) -- on "is_palindrome"
  local qf = qf_after("Semcode similar", "^semcode: similar to text%.py")
  T.ok(#qf.items > 0, "locations")
  local found = false
  for _, it in ipairs(qf.items) do
    T.ok(
      not (rel(it.filename) == "python/text.py" and it.lnum >= 4 and it.lnum <= 7),
      "the selection itself is excluded: " .. describe_items(qf.items)
    )
    found = found or rel(it.filename) == "js/strings.js"
  end
  T.ok(found, "isPalindrome in strings.js is similar: " .. describe_items(qf.items))
end)

T.it(":'<,'>Semcode similar (a line range) returns locations", function()
  vim.cmd.edit(ws .. "/lua/stack.lua")
  local qf = qf_after("18,26Semcode similar", "^semcode: similar to stack%.lua:18")
  T.ok(#qf.items > 0, "locations")
  for _, it in ipairs(qf.items) do
    T.ok(not (rel(it.filename) == "lua/stack.lua" and it.lnum == 18), describe_items(qf.items))
  end
end)

T.it("<Plug>(semcode-similar) in visual mode runs the range command", function()
  vim.cmd.edit(ws .. "/js/strings.js")
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local qf = qf_after(function()
    vim.api.nvim_feedkeys("Vj" .. vim.keycode("<Plug>(semcode-similar)"), "mx", false)
  end, "^semcode: similar to strings%.js:3")
  T.ok(#qf.items > 0, "locations")
end)

T.it("<Plug>(semcode-search) in visual mode searches the selected text", function()
  vim.cmd.edit(ws .. "/js/strings.js")
  vim.api.nvim_win_set_cursor(0, { 3, 10 }) -- inside "isPalindrome"
  local qf = qf_after(function()
    vim.api.nvim_feedkeys("viw" .. vim.keycode("<Plug>(semcode-search)"), "mx", false)
  end, "^semcode: isPalindrome$")
  T.ok(#qf.items > 0, "results")
  T.eq(vim.fn.mode(), "n", "back in normal mode")
end)

T.it("the 'Find similar code' code action fills quickfix", function()
  vim.cmd.edit(ws .. "/python/geometry.py")
  vim.api.nvim_win_set_cursor(0, { 13, 6 }) -- on euclidean_distance
  local titles = {}
  local qf = qf_after(function()
    vim.lsp.buf.code_action({
      apply = true,
      filter = function(action)
        titles[#titles + 1] = action.title
        return action.title == "Find similar code"
      end,
    })
  end, "^semcode: similar to geometry%.py")
  T.ok(vim.tbl_contains(titles, "Find similar code"), vim.inspect(titles))
  T.ok(#qf.items > 0, "locations")
end)

T.it(":Semcode status reports the index", function()
  T.messages = {}
  vim.cmd("Semcode status")
  local msg = T.wait(20000, function()
    return T.find_message("^semcode: ready")
  end, "a status message")
  T.ok(msg:find("chunks: %d+"), msg)
  T.ok(msg:find(ws, 1, true), msg)
end)

T.it(":Semcode reindex re-indexes with progress", function()
  local from = #progress + 1
  T.messages = {}
  vim.cmd("Semcode reindex")
  T.wait(TIMEOUT, function()
    return T.find_message("^semcode: indexed %d+ files")
  end, "the reindex result")
  T.ok(count_progress("begin", from) >= 1, "progress began again")
  T.wait(10000, function()
    return count_progress("end", from) >= 1
  end, "progress end")
  -- 5 code files: ignored/ (.semcodeignore) and *.generated.js (settings.exclude) are skipped
  T.ok(T.find_message("indexed 5 files"), vim.inspect(T.messages))
end)

T.it("files excluded by .semcodeignore never appear", function()
  local qf = qf_after("Semcode search compute circle area ignored radius", "^semcode: compute")
  for name in pairs(seen_files) do
    T.ok(not name:find("/ignored/", 1, true), "ignored file returned: " .. name)
  end
  T.ok(#qf.items > 0)
end)

T.it(":checkhealth semcode reports OK", function()
  vim.cmd("silent checkhealth semcode")
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local text = table.concat(lines, "\n")
  if vim.env.SEMCODE_TEST_VERBOSE then
    T.log(text)
  end
  T.ok(text:find("OK Neovim 0%.1%d"), text)
  T.ok(text:find("OK setup%(%) has been called"), text)
  T.ok(text:find("OK server executable"), text)
  T.ok(text:find("OK version"), text)
  T.ok(text:find("OK index " .. vim.pesc(ws) .. ": ready"), text)
  T.ok(not text:find("ERROR"), text)
  vim.cmd("tabclose")
end)

T.it("the client shuts down cleanly", function()
  local id = client.id
  if vim.fn.has("nvim-0.11") == 1 then
    client:stop()
  else
    client.stop()
  end
  T.wait(20000, function()
    return vim.lsp.get_client_by_id(id) == nil
  end, "the client to exit")
  exited = true
  T.eq(semcode.status(), "")
end)

T.it("commands start a client for the cwd's workspace when none is running", function()
  vim.cmd("enew")
  T.messages = {}
  vim.cmd("Semcode status")
  local msg = T.wait(TIMEOUT, function()
    return T.find_message("^semcode: %a+")
  end, "a status message")
  T.ok(msg:find(ws, 1, true), msg)
  local c = vim.lsp.get_clients({ name = "semcode" })[1]
  T.ok(c, "a client")
  T.eq(c.root_dir, ws)
  T.eq(#vim.lsp.get_clients({ name = "semcode", bufnr = 0 }), 0, "not attached to the buffer")
  -- let its startup indexing finish before stopping it
  T.wait(TIMEOUT, function()
    return semcode.status():match("^semcode: %d+ chunks$")
  end, "the index to be ready")
  c:stop()
  T.wait(30000, function()
    return #vim.lsp.get_clients({ name = "semcode" }) == 0
  end, "the client to exit")
end)

T.cleanup(function()
  if not exited then
    for _, c in ipairs(vim.lsp.get_clients({ name = "semcode" })) do
      pcall(function()
        c:stop(true)
      end)
    end
    vim.wait(5000, function()
      return #vim.lsp.get_clients({ name = "semcode" }) == 0
    end)
  end
  vim.fn.chdir("/")
  vim.fn.delete(tmp, "rf")
end)

T.finish()
