-- Pure-Lua specs: no server needed.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")

local config = require("semcode.config")
local util = require("semcode.util")
local picker = require("semcode.picker")
local commands = require("semcode.commands")

local tmp = vim.fn.tempname()
vim.fn.mkdir(tmp, "p")
T.cleanup(function()
  vim.fn.delete(tmp, "rf")
end)

T.it("config.merge replaces lists and merges nested tables", function()
  local merged = config.merge(config.defaults, {
    root_markers = { ".hg" },
    settings = { exclude = { "*.gen.py" }, references = { similarCode = true } },
    picker = "quickfix",
  })
  T.eq(merged.root_markers, { ".hg" })
  T.eq(merged.settings, { exclude = { "*.gen.py" }, references = { similarCode = true } })
  T.eq(merged.picker, "quickfix")
  T.eq(merged.cmd, { "semcode", "serve" })
  T.eq(merged.limit, 20)
  T.ok(vim.tbl_contains(merged.filetypes, "python"))
  -- defaults are untouched
  T.eq(config.defaults.root_markers[1], ".git")
  T.eq(config.defaults.settings, {})
  -- a later merge of a nested table keeps sibling keys
  local twice = config.merge(merged, { settings = { hybrid = false } })
  T.eq(twice.settings.exclude, { "*.gen.py" })
  T.eq(twice.settings.hybrid, false)
end)

T.it("config.validate rejects bad options with a message naming them", function()
  T.eq({ config.validate({}) }, { true })
  local ok, err = config.validate({ picker = "nope" })
  T.eq(ok, false)
  T.ok(err:find("picker"), err)
  ok, err = config.validate({ limit = 0 })
  T.ok(not ok and err:find("limit"), err)
  ok, err = config.validate({ cmd = "semcode" })
  T.ok(not ok and err:find("cmd"), err)
  ok, err = config.validate({ cmd = {} })
  T.ok(not ok and err:find("cmd"), err)
  ok, err = config.validate({ settings = true })
  T.ok(not ok and err:find("settings"), err)
  T.eq({ config.validate({ cmd = function() end, picker = "snacks", limit = 200 }) }, { true })
  local pok, perr = pcall(config.set, { picker = 3 })
  T.ok(not pok and tostring(perr):find("invalid option picker"), tostring(perr))
end)

T.it("settings are always sent as a JSON object", function()
  T.eq(vim.json.encode(config.settings_object({})), "{}")
  T.eq(vim.json.encode(config.settings_object(nil)), "{}")
  T.eq(vim.json.decode(vim.json.encode(config.settings_object({ hybrid = false }))), {
    hybrid = false,
  })
end)

T.it("to_items keeps the server's order and converts positions", function()
  local file = tmp .. "/a.py"
  vim.fn.writefile({ "import os", "def parse_url(url):", "    return url" }, file)
  local results = {
    {
      uri = vim.uri_from_fname(file),
      range = { start = { line = 1, character = 4 }, ["end"] = { line = 2, character = 14 } },
      score = 0.61234,
      symbol = "parse_url",
      kind = "function",
      preview = "\n  def parse_url(url):\n    return url",
      why = "semantic 0.612",
    },
    {
      uri = vim.uri_from_fname(file),
      range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 9 } },
      partial = true,
    },
    { bogus = true },
  }
  local items = util.to_items(results, "utf-16")
  T.eq(#items, 2)
  T.eq(items[1].filename, file)
  T.eq({ items[1].lnum, items[1].col, items[1].end_lnum, items[1].end_col }, { 2, 5, 3, 15 })
  T.eq(items[1].text, "function parse_url [0.612] def parse_url(url):")
  T.eq(items[1].user_data.why, "semantic 0.612")
  -- no preview: the source line is shown; partial results are marked
  T.eq(items[2].lnum, 1)
  T.eq(items[2].text, "import os (indexing)")
  T.eq(util.to_items(nil), {})
  T.eq(util.to_items(vim.NIL), {})
end)

T.it("to_items converts UTF-16 and UTF-32 offsets to byte columns", function()
  local file = tmp .. "/u.lua"
  -- "é" is 2 bytes / 1 UTF-16 unit; "😀" is 4 bytes / 2 UTF-16 units / 1 UTF-32 unit
  vim.fn.writefile({ 'local s = "é😀" .. x' }, file)
  local function at(character, enc)
    local r = {
      uri = vim.uri_from_fname(file),
      range = {
        start = { line = 0, character = character },
        ["end"] = { line = 0, character = character },
      },
    }
    return util.to_items({ r }, enc)[1].col
  end
  -- the "x" is at character 18 (utf-16), 17 (utf-32), 21 (utf-8 bytes) => byte col 22
  T.eq(at(18, "utf-16"), 22)
  T.eq(at(17, "utf-32"), 22)
  T.eq(at(21, "utf-8"), 22)
end)

T.it("to_items points at the symbol's definition inside a chunk", function()
  local file = tmp .. "/stack.lua"
  vim.fn.writefile({
    "-- pop_all is not it",
    "--- Remove the top item.",
    "function M.pop(stack)",
    "  return table.remove(stack)",
    "end",
  }, file)
  local function item(symbol, first, last)
    return util.to_items({
      {
        uri = vim.uri_from_fname(file),
        range = {
          start = { line = first, character = 0 },
          ["end"] = { line = last, character = 3 },
        },
        symbol = symbol,
      },
    }, "utf-16")[1]
  end
  local it = item("M.pop", 0, 4)
  T.eq({ it.lnum, it.col, it.end_lnum, it.end_col }, { 3, 12, 5, 4 })
  T.eq(it.text, "M.pop function M.pop(stack)")
  T.eq(it.user_data.range.start.line, 0, "the result keeps the server's range")
  -- not found in the chunk, or no symbol: the chunk start
  T.eq(item("push", 0, 4).lnum, 1)
  T.eq(item(nil, 1, 4).lnum, 2)
end)

T.it("to_items accepts LocationLinks", function()
  local items = util.to_items({
    {
      targetUri = "file:///nowhere/x.js",
      targetRange = { start = { line = 3, character = 0 }, ["end"] = { line = 9, character = 0 } },
      targetSelectionRange = {
        start = { line = 4, character = 2 },
        ["end"] = { line = 4, character = 5 },
      },
    },
  }, "utf-8")
  T.eq({ items[1].filename, items[1].lnum, items[1].col }, { "/nowhere/x.js", 5, 3 })
end)

T.it("line_range and cursor_range build LSP ranges in the client's encoding", function()
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "def f():", "    s = 'é'", "    return s" })
  T.eq(util.line_range(buf, 1, 2, "utf-16"), {
    start = { line = 0, character = 0 },
    ["end"] = { line = 1, character = 11 },
  })
  T.eq(util.line_range(buf, 2, 2, "utf-8")["end"], { line = 1, character = 12 })
  T.eq(util.line_range(buf, 3, 1, "utf-8").start, { line = 0, character = 0 })
  -- byte col 11 is just after "é" (bytes 9-10); that is character 10 in UTF-16
  T.eq(util.cursor_range(buf, 2, 11, "utf-16"), {
    start = { line = 1, character = 10 },
    ["end"] = { line = 1, character = 10 },
  })
  vim.api.nvim_buf_delete(buf, { force = true })
end)

T.it("parse_query pulls filters and limit out of the query", function()
  local q, opts = util.parse_query("lang=python  parse a url limit=5 path=src/** kind=function")
  T.eq(q, "parse a url")
  T.eq(opts, { limit = 5, filters = { language = "python", path = "src/**", kind = "function" } })
  q, opts = util.parse_query("x=1 minScore=0.3 where is auth")
  T.eq(q, "x=1 where is auth")
  T.eq(opts, { filters = { minScore = 0.3 } })
  T.eq({ util.parse_query("") }, { "", {} })
end)

T.it("format_status gives the statusline text", function()
  T.eq(util.format_status(nil), "")
  T.eq(util.format_status({}), "semcode: starting")
  T.eq(util.format_status({ indexing = true, percentage = 42 }), "semcode: indexing 42%")
  T.eq(util.format_status({ indexing = true }), "semcode: indexing")
  T.eq(util.format_status({ server = { state = "ready", chunks = 1234 } }), "semcode: 1234 chunks")
  T.eq(
    util.format_status({ server = { state = "indexing", progress = { done = 1, total = 4 } } }),
    "semcode: indexing 25%"
  )
  T.eq(util.format_status({ server = { state = "error" } }), "semcode: error")
end)

T.it("status_lines describes a semcode/status result", function()
  local lines = util.status_lines({
    state = "ready",
    files = 3,
    chunks = 12,
    model = "all-MiniLM-L6-v2",
    dimension = 384,
    indexPath = "/tmp/idx",
    workspaceFolders = { "/ws" },
    lastError = vim.NIL,
  })
  T.eq(lines, {
    "semcode: ready",
    "  files: 3, chunks: 12",
    "  model: all-MiniLM-L6-v2 (384 dims)",
    "  index: /tmp/idx",
    "  workspace: /ws",
  })
end)

T.it("picker.resolve falls back to quickfix", function()
  local none = { quickfix = true }
  T.eq(picker.resolve("auto", none), "quickfix")
  T.eq(picker.resolve(nil, none), "quickfix")
  T.eq(picker.resolve("telescope", none), "quickfix")
  T.eq(picker.resolve("auto", { snacks = true, ["fzf-lua"] = true }), "fzf-lua")
  T.eq(picker.resolve("snacks", { snacks = true, telescope = true }), "snacks")
  T.eq(picker.resolve("auto"), "quickfix") -- nothing installed here
end)

T.it("picker.show fills quickfix with title and items", function()
  local file = tmp .. "/q.py"
  vim.fn.writefile({ "a", "b" }, file)
  local items = util.to_items({
    {
      uri = vim.uri_from_fname(file),
      range = { start = { line = 1, character = 0 } },
      score = 0.5,
    },
  }, "utf-8")
  T.eq(picker.show(items, { title = "semcode: x", picker = "auto" }), "quickfix")
  local qf = vim.fn.getqflist({ title = 1, items = 1, context = 1 })
  T.eq(qf.title, "semcode: x")
  T.eq(#qf.items, 1)
  T.eq(vim.api.nvim_buf_get_name(qf.items[1].bufnr), file)
  T.eq(qf.items[1].lnum, 2)
  T.eq(qf.items[1].user_data.score, 0.5)
  T.eq(vim.bo.buftype, "quickfix", "quickfix window opened")
  vim.cmd("cclose")
  picker.show({}, { title = "semcode: nothing" })
  T.eq(vim.fn.getqflist({ title = 1 }).title, "semcode: nothing")
  T.ok(T.find_message("semcode: nothing: no results"))
end)

T.it(":Semcode is defined with completion and <Plug> mappings", function()
  T.eq(vim.fn.exists(":Semcode"), 2)
  T.eq(commands.complete("", "Semcode "), { "reindex", "search", "similar", "status" })
  T.eq(commands.complete("s", "Semcode s"), { "search", "similar", "status" })
  T.eq(commands.complete("f", "Semcode reindex f"), { "full" })
  T.eq(commands.complete("la", "Semcode search la"), { "lang=" })
  T.eq(commands.complete("", "'<,'>Semcode "), { "reindex", "search", "similar", "status" })
  T.eq(vim.fn.getcompletion("Semcode si", "cmdline"), { "similar" })
  T.ok(vim.fn.maparg("<Plug>(semcode-search)", "n") ~= "")
  T.ok(vim.fn.maparg("<Plug>(semcode-search)", "x") ~= "")
  T.ok(vim.fn.maparg("<Plug>(semcode-similar)", "n") ~= "")
  T.ok(vim.fn.maparg("<Plug>(semcode-similar)", "x") ~= "")
  -- plugin/ is idempotent
  vim.cmd.runtime("plugin/semcode.lua")
  T.eq(vim.fn.exists(":Semcode"), 2)
end)

T.it(":Semcode without a server or subcommand reports an error", function()
  T.messages = {}
  vim.cmd("Semcode")
  T.ok(T.find_message("missing subcommand"), vim.inspect(T.messages))
  vim.cmd("Semcode frobnicate")
  T.ok(T.find_message('unknown subcommand "frobnicate"'))
  vim.cmd("Semcode status")
  T.ok(T.find_message("call require%('semcode'%).setup%(%) first"), vim.inspect(T.messages))
  T.eq(require("semcode").status(), "")
end)

T.it("find_root tries markers in order", function()
  local ws = tmp .. "/ws"
  vim.fn.mkdir(ws .. "/sub/deep", "p")
  vim.fn.writefile({}, ws .. "/pyproject.toml")
  vim.fn.writefile({}, ws .. "/sub/package.json")
  vim.fn.writefile({ "x" }, ws .. "/sub/deep/a.py")
  vim.cmd.edit(ws .. "/sub/deep/a.py")
  local lsp = require("semcode.lsp")
  T.eq(lsp.find_root(0, { "pyproject.toml", "package.json" }), ws)
  T.eq(lsp.find_root(0, { "package.json", "pyproject.toml" }), ws .. "/sub")
  T.eq(lsp.find_root(0, { { "pyproject.toml", "package.json" } }), ws .. "/sub")
  T.eq(lsp.find_root(0, { "nothing-here" }), nil)
  vim.cmd("bwipeout!")
end)

T.it("health.cli_base derives the CLI from the server command", function()
  local health = require("semcode.health")
  T.eq(health.cli_base({ "semcode", "serve" }), { "semcode" })
  T.eq(health.cli_base({ "uvx", "semcode", "serve" }), { "uvx", "semcode" })
  T.eq(health.cli_base({ "python", "-m", "lsp_server" }), nil)
end)

T.it("setup registers the server config and the client-side command", function()
  if vim.fn.has("nvim-0.11") == 0 then
    return
  end
  require("semcode").setup({
    cmd = { "true" },
    settings = { hybrid = false, exclude = { "gen/" } },
    root_markers = { ".git" },
  })
  local cfg = vim.lsp.config["semcode"]
  T.eq(cfg.cmd, { "true" })
  T.eq(cfg.root_markers, { ".git" })
  T.eq(cfg.init_options, { hybrid = false, exclude = { "gen/" } })
  T.eq(cfg.settings, { semcode = { hybrid = false, exclude = { "gen/" } } })
  T.ok(vim.tbl_contains(cfg.filetypes, "lua"))
  T.ok(vim.lsp.is_enabled("semcode"))
  T.eq(type(vim.lsp.commands["semcode.findSimilar"]), "function")
  -- a second setup replaces list options instead of merging them
  require("semcode").setup({ cmd = { "true" }, root_markers = { ".hg" } })
  T.eq(vim.lsp.config["semcode"].root_markers, { ".hg" })
  T.eq(vim.json.encode(vim.lsp.config["semcode"].init_options), "{}")
  T.ok(not T.find_message("is not executable"))
  require("semcode").setup({ cmd = { "/nonexistent/semcode", "serve" } })
  T.ok(T.find_message("`/nonexistent/semcode` is not executable"), vim.inspect(T.messages))
  vim.lsp.enable("semcode", false)
end)

T.it("doc/semcode.txt has valid help tags", function()
  local doc = tmp .. "/doc"
  vim.fn.mkdir(doc, "p")
  vim.fn.writefile(vim.fn.readfile(T.root .. "/doc/semcode.txt"), doc .. "/semcode.txt")
  vim.cmd.helptags(doc) -- errors on duplicate tags
  local tags = table.concat(vim.fn.readfile(doc .. "/tags"), "\n")
  for _, tag in ipairs({ "semcode.setup()", ":Semcode-search", "<Plug>(semcode-similar)" }) do
    T.ok(tags:find(vim.pesc(tag) .. "\t"), tag)
  end
end)

T.finish()
