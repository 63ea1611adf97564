-- Opens each picker integration with fixture results. The pickers are not on any package
-- registry, so this runs only when they are checked out under $SEMCODE_TEST_PACK (default
-- .ci-cache/pack/: telescope.nvim + plenary.nvim, fzf-lua (+ the fzf binary), snacks.nvim);
-- missing ones are skipped.
local T = dofile(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)) .. "/helpers.lua")

local pack = vim.env.SEMCODE_TEST_PACK or (T.root .. "/.ci-cache/pack")
local function add(name)
  local dir = pack .. "/" .. name
  if vim.fn.isdirectory(dir) == 1 then
    vim.opt.runtimepath:append(dir)
    return true
  end
  return false
end

local have = {
  telescope = add("plenary.nvim") and add("telescope.nvim"),
  ["fzf-lua"] = add("fzf-lua") and vim.fn.executable("fzf") == 1,
  snacks = add("snacks.nvim"),
}

local util = require("semcode.util")
local picker = require("semcode.picker")

vim.o.columns, vim.o.lines = 160, 50

local function items()
  local geometry = T.fixture .. "/python/geometry.py"
  local strings = T.fixture .. "/js/strings.js"
  return util.to_items({
    {
      uri = vim.uri_from_fname(geometry),
      range = { start = { line = 5, character = 0 }, ["end"] = { line = 9, character = 0 } },
      score = 0.7,
      symbol = "circle_area",
      kind = "function",
    },
    {
      uri = vim.uri_from_fname(strings),
      range = { start = { line = 2, character = 0 }, ["end"] = { line = 6, character = 1 } },
      score = 0.4,
      symbol = "isPalindrome",
    },
  }, "utf-16")
end

---@param ft string
local function wait_ft(ft)
  return T.wait(5000, function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype == ft then
        return b
      end
    end
  end, "a " .. ft .. " buffer")
end

local function close_floats()
  vim.cmd("stopinsert")
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then
      pcall(vim.api.nvim_win_close, w, true)
    end
  end
end

if have.telescope then
  T.it("telescope picker lists results in order and opens the selection", function()
    vim.cmd("enew")
    T.eq(picker.show(items(), { title = "semcode: area", picker = "telescope" }), "telescope")
    local prompt = wait_ft("TelescopePrompt")
    local state = require("telescope.actions.state")
    local p = T.wait(5000, function()
      local cur = state.get_current_picker(prompt)
      return cur and cur.manager and cur.manager:num_results() == 2 and cur
    end, "2 telescope results")
    T.eq(p.prompt_title, "semcode: area")
    local entry = T.wait(5000, function()
      return state.get_selected_entry()
    end, "a selected entry")
    T.eq(entry.filename, T.fixture .. "/python/geometry.py")
    require("telescope.actions").select_default(prompt)
    T.wait(5000, function()
      return vim.api.nvim_buf_get_name(0) == T.fixture .. "/python/geometry.py"
    end, "geometry.py opened")
    T.eq(vim.api.nvim_win_get_cursor(0)[1], 6)
    close_floats()
  end)
end

if have.snacks then
  T.it("snacks picker lists results in order", function()
    require("snacks").setup({ picker = { enabled = true } })
    vim.cmd("enew")
    T.eq(picker.show(items(), { title = "semcode: area", picker = "snacks" }), "snacks")
    local p = T.wait(5000, function()
      local ps = Snacks.picker.get({ source = "semcode" })
      return ps[1] and #ps[1]:items() == 2 and ps[1]
    end, "a snacks picker with 2 items")
    local first = p:items()[1]
    T.eq(first.file, T.fixture .. "/python/geometry.py")
    T.eq(first.pos, { 6, 4 }) -- at "circle_area"
    p:close()
    close_floats()
  end)
end

if have["fzf-lua"] then
  T.it("fzf-lua picker lists the results and opens the selection", function()
    vim.cmd("enew")
    T.eq(picker.show(items(), { title = "semcode: area", picker = "fzf-lua" }), "fzf-lua")
    local term = T.wait(10000, function()
      for _, b in ipairs(vim.api.nvim_list_bufs()) do
        if vim.bo[b].buftype == "terminal" then
          local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), "\n")
          if text:find("geometry.py:6:5:", 1, true) and text:find("strings.js:3:10:", 1, true) then
            return b
          end
        end
      end
    end, "fzf listing both results")
    -- <CR> in fzf opens the first (best) result at its line
    vim.api.nvim_chan_send(vim.bo[term].channel, "\r")
    T.wait(10000, function()
      return vim.api.nvim_buf_get_name(0) == T.fixture .. "/python/geometry.py"
    end, "geometry.py opened")
    T.eq(vim.api.nvim_win_get_cursor(0), { 6, 4 })
    close_floats()
  end)
end

if not (have.telescope or have.snacks or have["fzf-lua"]) then
  T.log("# skipped: no picker plugins under " .. pack)
end

T.finish()
