---@mod semcode.util Pure helpers: result conversion, ranges, query parsing, status text

local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

---A search result from `workspace/semanticSearch` (or a plain LSP `Location`).
---@class semcode.Result
---@field uri string
---@field range lsp.Range
---@field score? number
---@field symbol? string
---@field kind? string
---@field language? string
---@field preview? string
---@field partial? boolean
---@field namePath? string
---@field why? string

---A quickfix item (`setqflist()`) carrying the original result in `user_data`.
---@class semcode.Item
---@field filename string
---@field lnum integer 1-based
---@field col integer 1-based byte column
---@field end_lnum integer
---@field end_col integer
---@field text string
---@field user_data semcode.Result

---Byte index of an LSP character offset in `line`.
---@param line string
---@param character integer
---@param encoding string "utf-8"|"utf-16"|"utf-32"
---@return integer
function M.byteindex(line, character, encoding)
  if character <= 0 then
    return 0
  end
  if encoding == "utf-8" or not line:find("[\128-\255]") then
    return character
  end
  local ok, idx
  if has_011 then
    ok, idx = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, idx = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  if ok and idx then
    return idx
  end
  return #line
end

---LSP character offset of a byte column in `line`.
---@param line string
---@param byte integer 0-based byte column
---@param encoding string
---@return integer
function M.charindex(line, byte, encoding)
  byte = math.max(0, math.min(byte, #line))
  if encoding == "utf-8" or not line:find("[\128-\255]") then
    return byte
  end
  local ok, idx
  if has_011 then
    ok, idx = pcall(vim.str_utfindex, line, encoding, byte, false)
  else
    local ok32, c32, c16 = pcall(vim.str_utfindex, line, byte)
    ok, idx = ok32, (encoding == "utf-16" and c16 or c32)
  end
  return ok and idx or byte
end

---Returns a function giving line `lnum` (1-based) of a file, from its buffer when loaded.
---@return fun(filename: string, lnum: integer): string
function M.line_reader()
  local cache = {} ---@type table<string, string[]|false>
  return function(filename, lnum)
    local lines = cache[filename]
    if lines == nil then
      local bufnr = vim.fn.bufnr(filename)
      if bufnr ~= -1 and vim.api.nvim_buf_is_loaded(bufnr) then
        lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
      elseif vim.fn.filereadable(filename) == 1 then
        lines = vim.fn.readfile(filename)
      else
        lines = false
      end
      cache[filename] = lines
    end
    return lines and lines[lnum] or ""
  end
end

---Formats a number with up to 3 decimals.
---@param n number
---@return string
local function fmt_score(n)
  return (("%.3f"):format(n):gsub("0+$", ""):gsub("%.$", ""))
end

---The text shown for a result in quickfix and pickers.
---@param r semcode.Result
---@param line? string The source line at the result's start, used when there is no preview
---@return string
function M.result_text(r, line)
  local parts = {}
  local name = r.namePath or r.symbol
  if name and name ~= "" then
    parts[#parts + 1] = r.kind and r.kind ~= "" and ("%s %s"):format(r.kind, name) or name
  end
  if type(r.score) == "number" then
    parts[#parts + 1] = "[" .. fmt_score(r.score) .. "]"
  end
  local preview = type(r.preview) == "string" and r.preview or line or ""
  -- first non-blank line of the preview
  local first = preview:match("^%s*([^\n]*%S)") or ""
  if first ~= "" then
    parts[#parts + 1] = first
  end
  if r.partial then
    parts[#parts + 1] = "(indexing)"
  end
  return table.concat(parts, " ")
end

---The first line in `first`..`last` that names the result's symbol (its last name-path
---segment, as a whole word), with the 1-based byte column of the name. Nil without a symbol.
---@param r semcode.Result
---@param first integer
---@param last integer
---@param filename string
---@param read_line fun(filename: string, lnum: integer): string
---@return integer? lnum
---@return integer? col
function M.symbol_position(r, first, last, filename, read_line)
  local name = type(r.symbol) == "string" and r.symbol or nil
  if not name or name == "" or last <= first then
    return nil
  end
  name = name:match("([%w_$]+)[^%w_$]*$")
  if not name then
    return nil
  end
  local pattern = "%f[%w_$]" .. vim.pesc(name) .. "%f[^%w_$]"
  for lnum = first, math.min(last, first + 200) do
    local line = read_line(filename, lnum)
    local col = line:find(pattern)
    if col then
      return lnum, col
    end
  end
  return nil
end

---Converts search results or LSP Locations to quickfix items, keeping their order (best first).
---Also accepts `LocationLink`s (`targetUri`/`targetSelectionRange`).
---@param results semcode.Result[]|lsp.Location[]|nil
---@param encoding? string The client's offset encoding (default "utf-16")
---@param read_line? fun(filename: string, lnum: integer): string
---@return semcode.Item[]
function M.to_items(results, encoding, read_line)
  encoding = encoding or "utf-16"
  read_line = read_line or M.line_reader()
  local items = {}
  if type(results) ~= "table" then
    return items
  end
  for _, r in ipairs(results) do
    local uri = r.uri or r.targetUri
    local range = r.range or r.targetSelectionRange or r.targetRange
    if type(uri) == "string" and type(range) == "table" then
      local filename = vim.uri_to_fname(uri)
      local s, e = range.start, range["end"] or range.start
      local sline = read_line(filename, s.line + 1)
      local eline = e.line == s.line and sline or read_line(filename, e.line + 1)
      local lnum, col = s.line + 1, M.byteindex(sline, s.character, encoding) + 1
      -- a chunk may start with comments or imports: point at its symbol's definition
      local def_lnum, def_col = M.symbol_position(r, s.line + 1, e.line + 1, filename, read_line)
      if def_lnum then
        lnum, col, sline = def_lnum, def_col, read_line(filename, def_lnum)
      end
      items[#items + 1] = {
        filename = filename,
        lnum = lnum,
        col = col,
        end_lnum = e.line + 1,
        end_col = M.byteindex(eline, e.character, encoding) + 1,
        text = M.result_text(r, sline),
        user_data = r,
      }
    end
  end
  return items
end

---An LSP range covering lines `line1`..`line2` (1-based, inclusive) of a buffer.
---@param bufnr integer
---@param line1 integer
---@param line2 integer
---@param encoding string
---@return lsp.Range
function M.line_range(bufnr, line1, line2, encoding)
  if line1 > line2 then
    line1, line2 = line2, line1
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
  return {
    start = { line = line1 - 1, character = 0 },
    ["end"] = { line = line2 - 1, character = M.charindex(last, #last, encoding) },
  }
end

---An empty LSP range at a (1-based row, 0-based byte col) position: "the symbol under the cursor".
---@param bufnr integer
---@param row integer
---@param col integer
---@param encoding string
---@return lsp.Range
function M.cursor_range(bufnr, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1] or ""
  local pos = { line = row - 1, character = M.charindex(line, col, encoding) }
  return { start = pos, ["end"] = vim.deepcopy(pos) }
end

local filter_keys = {
  path = "path",
  lang = "language",
  language = "language",
  kind = "kind",
  minscore = "minScore",
  minScore = "minScore",
}

---Splits `:Semcode search` arguments into the query and options. Words of the form
---`path=GLOB`, `lang=NAME` (or `language=`), `kind=KIND`, `minScore=N` and `limit=N` become
---filters; everything else is the query.
---@param text string
---@return string query
---@return { limit?: integer, filters?: table }
function M.parse_query(text)
  local words, opts, filters = {}, {}, {}
  for word in (text or ""):gmatch("%S+") do
    local key, value = word:match("^([%a]+)=(.+)$")
    if key == "limit" and tonumber(value) then
      opts.limit = math.floor(tonumber(value))
    elseif key and filter_keys[key] then
      local k = filter_keys[key]
      filters[k] = k == "minScore" and (tonumber(value) or value) or value
    else
      words[#words + 1] = word
    end
  end
  if next(filters) then
    opts.filters = filters
  end
  return table.concat(words, " "), opts
end

---Per-client state used by the statusline helper.
---@class semcode.ClientState
---@field indexing? boolean A work-done progress is running
---@field percentage? integer
---@field message? string
---@field server? table Last `semcode/status` result

---Statusline text for a client's state, e.g. "semcode: indexing 42%" or "semcode: 1234 chunks".
---@param st semcode.ClientState?
---@return string
function M.format_status(st)
  if not st then
    return ""
  end
  if st.indexing then
    if st.percentage then
      return ("semcode: indexing %d%%"):format(st.percentage)
    end
    return "semcode: indexing"
  end
  local s = st.server
  if type(s) ~= "table" then
    return "semcode: starting"
  end
  if s.state == "indexing" then
    local p = s.progress
    if type(p) == "table" and type(p.total) == "number" and p.total > 0 then
      return ("semcode: indexing %d%%"):format(math.floor(100 * (p.done or 0) / p.total))
    end
    return "semcode: indexing"
  elseif s.state == "error" then
    return "semcode: error"
  elseif s.state == "starting" then
    return "semcode: starting"
  end
  return ("semcode: %d chunks"):format(tonumber(s.chunks) or 0)
end

---Human-readable lines for a `semcode/status` result.
---@param s table
---@return string[]
function M.status_lines(s)
  local lines = {}
  local function add(fmt, ...)
    lines[#lines + 1] = fmt:format(...)
  end
  add("semcode: %s", tostring(s.state or "unknown"))
  if type(s.progress) == "table" and s.progress.total then
    add("  progress: %s/%s files", tostring(s.progress.done or 0), tostring(s.progress.total))
  end
  add("  files: %s, chunks: %s", tostring(s.files or 0), tostring(s.chunks or 0))
  if s.model and s.model ~= vim.NIL then
    local dim = (s.dimension and s.dimension ~= vim.NIL) and (" (%s dims)"):format(s.dimension)
      or ""
    add("  model: %s%s", tostring(s.model), dim)
  end
  if s.indexPath and s.indexPath ~= vim.NIL then
    add("  index: %s", tostring(s.indexPath))
  end
  if type(s.workspaceFolders) == "table" and #s.workspaceFolders > 0 then
    add("  workspace: %s", table.concat(vim.tbl_map(tostring, s.workspaceFolders), ", "))
  end
  if s.lastError and s.lastError ~= vim.NIL and s.lastError ~= "" then
    add("  last error: %s", tostring(s.lastError))
  end
  return lines
end

---Sends a request with the method syntax on 0.11 and the function syntax on 0.10.
---@param client vim.lsp.Client
---@param method string
---@param params table?
---@param handler fun(err: lsp.ResponseError?, result: any, ctx: table)
---@param bufnr? integer
---@return boolean ok
---@return integer? request_id
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

---Synchronous variant of |M.request|.
---@param client vim.lsp.Client
---@param method string
---@param params table?
---@param timeout_ms integer
---@param bufnr? integer
---@return { err: lsp.ResponseError?, result: any }?
---@return string? err
function M.request_sync(client, method, params, timeout_ms, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

return M
