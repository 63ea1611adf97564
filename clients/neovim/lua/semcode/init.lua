---@mod semcode Semantic code search through the semcode language server

local config = require("semcode.config")
local lsp = require("semcode.lsp")
local picker = require("semcode.picker")
local util = require("semcode.util")

local M = {}

---@param msg string
---@param level? integer
local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "semcode" })
end

---@param err lsp.ResponseError|string
---@return string
local function err_text(err)
  if type(err) == "table" then
    return tostring(err.message or vim.inspect(err))
  end
  return tostring(err)
end

---Shows the locations returned by `semcode.findSimilar`.
---@param client vim.lsp.Client
---@param result lsp.Location[]?
---@param title string
---@param opts? { picker?: semcode.PickerName, on_results?: fun(items: semcode.Item[]) }
local function show_similar(client, result, title, opts)
  opts = opts or {}
  local items = util.to_items(result, client.offset_encoding)
  picker.show(items, {
    title = title,
    picker = opts.picker or config.get().picker,
    open = config.get().open_quickfix,
  })
  if opts.on_results then
    opts.on_results(items)
  end
end

---Handler for the `semcode.findSimilar` command of the server's "Find similar code" code action.
---Neovim runs client-side handlers instead of sending `workspace/executeCommand` itself (and
---dropping its result), so this sends the request and shows the locations.
---@param command lsp.Command
---@param ctx { client_id: integer, bufnr: integer }
function M.find_similar_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local args = command.arguments or {}
  local title = "semcode: similar code"
  if type(args[1]) == "string" and type(args[2]) == "table" and args[2].start then
    title = ("semcode: similar to %s:%d"):format(
      vim.fn.fnamemodify(vim.uri_to_fname(args[1]), ":t"),
      args[2].start.line + 1
    )
  end
  util.request(client, "workspace/executeCommand", {
    command = command.command,
    arguments = args,
  }, function(err, result)
    if err then
      notify("semcode: find similar failed: " .. err_text(err), vim.log.levels.ERROR)
      return
    end
    show_similar(client, result, title)
  end, ctx.bufnr)
end

---Configures semcode and registers the language server. On Neovim 0.11+ this calls
---`vim.lsp.config("semcode", ...)` and `vim.lsp.enable("semcode")`; on 0.10 it starts the server
---from a FileType autocmd. Calling it again replaces the options.
---@param opts? semcode.Opts
function M.setup(opts)
  if vim.fn.has("nvim-0.10") == 0 then
    notify("semcode: Neovim 0.10 or newer is required", vim.log.levels.ERROR)
    return
  end
  local resolved = config.set(opts)
  vim.lsp.commands["semcode.findSimilar"] = M.find_similar_command
  lsp.register(resolved)
  local cmd = resolved.cmd
  if type(cmd) == "table" and vim.fn.executable(cmd[1]) == 0 then
    notify(
      ("semcode: `%s` is not executable; install semcode or set `cmd` (see :checkhealth semcode)"):format(
        cmd[1]
      ),
      vim.log.levels.WARN
    )
  end
end

---@class semcode.SearchOpts
---@field limit? integer Number of results (1..200)
---@field filters? { path?: string, language?: string, kind?: string, minScore?: number }
---@field picker? semcode.PickerName Overrides the configured picker
---@field bufnr? integer Buffer whose client is used (default: current)
---@field on_results? fun(items: semcode.Item[], results: semcode.Result[]) Called after showing

---Searches the workspace for `query` (prompts when it is empty) and shows the results.
---@param query? string
---@param opts? semcode.SearchOpts
function M.search(query, opts)
  opts = opts or {}
  if query == nil or vim.trim(query) == "" then
    vim.ui.input({ prompt = "Semcode search: " }, function(input)
      if input and vim.trim(input) ~= "" then
        M.search(input, opts)
      end
    end)
    return
  end
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  lsp.with_client(bufnr, function(client)
    local params = { query = query, limit = opts.limit or config.get().limit }
    if opts.filters and next(opts.filters) then
      params.filters = opts.filters
    end
    util.request(client, "workspace/semanticSearch", params, function(err, result)
      if err then
        notify("semcode: search failed: " .. err_text(err), vim.log.levels.ERROR)
        return
      end
      local items = util.to_items(result, client.offset_encoding)
      picker.show(items, {
        title = "semcode: " .. query,
        picker = opts.picker or config.get().picker,
        open = config.get().open_quickfix,
      })
      if opts.on_results then
        opts.on_results(items, result or {})
      end
    end)
  end)
end

---@class semcode.SimilarOpts
---@field line1? integer First line (1-based) of a selection
---@field line2? integer Last line of a selection; without a selection the symbol under the cursor
---@field picker? semcode.PickerName
---@field bufnr? integer
---@field on_results? fun(items: semcode.Item[])

---Finds code similar to a line range (or the symbol under the cursor) with `semcode.findSimilar`.
---@param opts? semcode.SimilarOpts
function M.similar(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  if vim.api.nvim_buf_get_name(bufnr) == "" then
    notify("semcode: the buffer has no file", vim.log.levels.WARN)
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  lsp.with_client(bufnr, function(client)
    local enc = client.offset_encoding or "utf-16"
    local range
    if opts.line1 and opts.line2 then
      range = util.line_range(bufnr, opts.line1, opts.line2, enc)
    else
      range = util.cursor_range(bufnr, cursor[1], cursor[2], enc)
    end
    local uri = vim.uri_from_bufnr(bufnr)
    local title = ("semcode: similar to %s:%d"):format(
      vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ":t"),
      range.start.line + 1
    )
    util.request(client, "workspace/executeCommand", {
      command = "semcode.findSimilar",
      arguments = { uri, range },
    }, function(err, result)
      if err then
        notify("semcode: find similar failed: " .. err_text(err), vim.log.levels.ERROR)
        return
      end
      show_similar(client, result, title, opts)
    end, bufnr)
  end)
end

---Re-indexes the workspace (`full` drops the index first). Progress shows through LspProgress.
---@param opts? { full?: boolean, bufnr?: integer, on_done?: fun(err: any, result: table?) }
function M.reindex(opts)
  opts = opts or {}
  lsp.with_client(opts.bufnr or vim.api.nvim_get_current_buf(), function(client)
    local args = opts.full and { { full = true } } or {}
    notify(opts.full and "semcode: rebuilding the index" or "semcode: re-indexing")
    util.request(client, "workspace/executeCommand", {
      command = "semcode.reindex",
      arguments = args,
    }, function(err, result)
      if err then
        notify("semcode: reindex failed: " .. err_text(err), vim.log.levels.ERROR)
      elseif type(result) == "table" then
        notify(
          ("semcode: indexed %s files, %s chunks"):format(
            tostring(result.files or "?"),
            tostring(result.chunks or "?")
          )
        )
      end
      lsp.refresh_status(client)
      if opts.on_done then
        opts.on_done(err, result)
      end
    end)
  end)
end

---Shows the server's `semcode/status`.
---@param opts? { bufnr?: integer, on_result?: fun(result: table?, lines: string[]) }
function M.show_status(opts)
  opts = opts or {}
  lsp.with_client(opts.bufnr or vim.api.nvim_get_current_buf(), function(client)
    lsp.refresh_status(client, function(err, result)
      if err then
        notify("semcode: status failed: " .. err_text(err), vim.log.levels.ERROR)
        return
      end
      local lines = util.status_lines(result or {})
      notify(table.concat(lines, "\n"))
      if opts.on_result then
        opts.on_result(result, lines)
      end
    end)
  end)
end

---Statusline text for the buffer's semcode client, e.g. "semcode: indexing 42%" or
---"semcode: 1234 chunks"; "" when no client is running.
---@param bufnr? integer
---@return string
function M.status(bufnr)
  local client = lsp.get_client(bufnr)
  if not client then
    return ""
  end
  return util.format_status(lsp.state[client.id] or {})
end

---The semcode client for a buffer (attached, or one whose workspace contains it).
---@param bufnr? integer
---@return vim.lsp.Client?
function M.get_client(bufnr)
  return lsp.get_client(bufnr)
end

return M
