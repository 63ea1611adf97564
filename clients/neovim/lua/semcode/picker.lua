---@mod semcode.picker Shows results in quickfix or an installed picker

local M = {}

---@class semcode.ShowOpts
---@field title string
---@field picker? semcode.PickerName
---@field open? boolean Open the quickfix window (quickfix only)

---@param name string
---@return boolean
local function has_module(name)
  if package.loaded[name] then
    return true
  end
  local ok = pcall(require, name)
  return ok
end

---Which pickers are installed.
---@return table<string, boolean>
function M.available()
  return {
    quickfix = true,
    telescope = has_module("telescope"),
    ["fzf-lua"] = has_module("fzf-lua"),
    snacks = has_module("snacks") and (rawget(_G, "Snacks") ~= nil or has_module("snacks.picker")),
  }
end

---Resolves "auto" (telescope, then fzf-lua, then snacks, then quickfix) and falls back to
---quickfix when the chosen picker is not installed.
---@param name semcode.PickerName?
---@param available? table<string, boolean>
---@return string
function M.resolve(name, available)
  available = available or M.available()
  name = name or "auto"
  if name == "auto" then
    for _, n in ipairs({ "telescope", "fzf-lua", "snacks" }) do
      if available[n] then
        return n
      end
    end
    return "quickfix"
  end
  if available[name] then
    return name
  end
  return "quickfix"
end

---Display path: relative to the cwd when inside it.
---@param filename string
---@return string
function M.display_path(filename)
  return vim.fn.fnamemodify(filename, ":.")
end

---@param items semcode.Item[]
---@param opts semcode.ShowOpts
function M.quickfix(items, opts)
  vim.fn.setqflist({}, " ", {
    title = opts.title,
    items = items,
    context = { semcode = true },
  })
  if opts.open ~= false and #items > 0 then
    vim.cmd("botright copen")
  end
end

---@param items semcode.Item[]
---@param opts semcode.ShowOpts
function M.telescope(items, opts)
  local pickers = require("telescope.pickers")
  local finders = require("telescope.finders")
  local conf = require("telescope.config").values
  pickers
    .new({}, {
      prompt_title = opts.title,
      finder = finders.new_table({
        results = items,
        entry_maker = function(item)
          local display = ("%s:%d: %s"):format(M.display_path(item.filename), item.lnum, item.text)
          return {
            value = item,
            display = display,
            ordinal = display,
            filename = item.filename,
            lnum = item.lnum,
            col = item.col,
          }
        end,
      }),
      previewer = conf.qflist_previewer({}),
      sorter = conf.generic_sorter({}),
    })
    :find()
end

---@param items semcode.Item[]
---@param opts semcode.ShowOpts
function M.fzf_lua(items, opts)
  local fzf = require("fzf-lua")
  local entries = {}
  for _, item in ipairs(items) do
    entries[#entries + 1] = ("%s:%d:%d: %s"):format(
      M.display_path(item.filename),
      item.lnum,
      item.col,
      item.text
    )
  end
  fzf.fzf_exec(entries, {
    prompt = "semcode> ",
    winopts = { title = " " .. opts.title .. " " },
    previewer = "builtin",
    actions = fzf.defaults.actions.files,
    fzf_opts = { ["--no-sort"] = true },
  })
end

---@param items semcode.Item[]
---@param opts semcode.ShowOpts
function M.snacks(items, opts)
  local snacks = rawget(_G, "Snacks") or require("snacks")
  local picker_items = {}
  for i, item in ipairs(items) do
    picker_items[#picker_items + 1] = {
      idx = i,
      score = #items - i + 1,
      text = M.display_path(item.filename) .. " " .. item.text,
      file = item.filename,
      pos = { item.lnum, item.col - 1 },
      end_pos = { item.end_lnum, item.end_col - 1 },
      line = item.text,
      item = item,
    }
  end
  snacks.picker.pick({
    source = "semcode",
    title = opts.title,
    items = picker_items,
    format = "file",
    preview = "file",
    matcher = { sort_empty = false },
    sort = { fields = { "score:desc", "idx" } },
  })
end

local impl = {
  quickfix = M.quickfix,
  telescope = M.telescope,
  ["fzf-lua"] = M.fzf_lua,
  snacks = M.snacks,
}

---Shows items in the configured picker. An empty list only notifies.
---@param items semcode.Item[]
---@param opts semcode.ShowOpts
---@return string picker The picker used
function M.show(items, opts)
  if #items == 0 then
    vim.fn.setqflist({}, " ", { title = opts.title, items = {}, context = { semcode = true } })
    vim.notify(opts.title .. ": no results", vim.log.levels.INFO)
    return "quickfix"
  end
  local name = M.resolve(opts.picker)
  if name ~= "quickfix" then
    local ok, err = pcall(impl[name], items, opts)
    if ok then
      return name
    end
    vim.notify(
      ("semcode: %s picker failed (%s); using quickfix"):format(name, err),
      vim.log.levels.WARN
    )
  end
  M.quickfix(items, opts)
  return "quickfix"
end

return M
