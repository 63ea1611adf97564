---@mod semcode.config Options and their defaults

local M = {}

---@alias semcode.PickerName "auto"|"quickfix"|"telescope"|"fzf-lua"|"snacks"

---Settings sent to the server (as `initializationOptions` and for the `semcode` section of
---`workspace/configuration`). See the server's docs/protocol.md; every key is optional.
---@class semcode.ServerSettings
---@field model? string|nil Path to a GGUF embedding model; nil = the bundled model
---@field queryPrefix? string|nil
---@field documentPrefix? string|nil
---@field include? string[] Gitignore-style patterns; when set only matching files are indexed
---@field exclude? string[] Extra patterns to skip
---@field maxFileSize? integer Bytes; larger files are skipped
---@field hybrid? boolean Fuse full-text (BM25) with vector search
---@field threads? integer llama.cpp threads, 0 = physical cores
---@field indexDir? string|nil Where the index lives
---@field references? { similarCode?: boolean }
---@field logLevel? "debug"|"info"|"warning"|"error"

---Options accepted by `require("semcode").setup()`. Every field is optional.
---@class semcode.Opts
---@field cmd? string[]|fun(dispatchers: table): table Command that starts the server
---@field root_markers? string[] Files or directories that mark a workspace root
---@field filetypes? string[] Buffers of these filetypes start/attach the server
---@field settings? semcode.ServerSettings Server settings
---@field picker? semcode.PickerName Where results go
---@field limit? integer Number of search results (1..200)
---@field open_quickfix? boolean Open the quickfix window when results go to quickfix
---@field capabilities? table Extra client capabilities (merged into the defaults)
---@field on_attach? fun(client: vim.lsp.Client, bufnr: integer)

---The resolved configuration (every field set).
---@class semcode.Config
---@field cmd string[]|fun(dispatchers: table): table
---@field root_markers string[]
---@field filetypes string[]
---@field settings semcode.ServerSettings
---@field picker semcode.PickerName
---@field limit integer
---@field open_quickfix boolean
---@field capabilities? table
---@field on_attach? fun(client: vim.lsp.Client, bufnr: integer)

---@type semcode.Config
M.defaults = {
  cmd = { "semcode", "serve" },
  root_markers = {
    ".git",
    ".hg",
    ".jj",
    ".semcodeignore",
    "pyproject.toml",
    "setup.py",
    "package.json",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "Gemfile",
    "composer.json",
    "mix.exs",
    "CMakeLists.txt",
    "Makefile",
  },
  -- The code filetypes the server parses (engine/chunking/languages.py).
  filetypes = {
    "python",
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
    "cs",
    "ruby",
    "php",
    "kotlin",
    "swift",
    "lua",
    "sh",
    "bash",
    "zsh",
    "scala",
    "dart",
    "elixir",
    "zig",
    "haskell",
    "ocaml",
    "r",
    "julia",
    "vue",
    "svelte",
  },
  settings = {},
  picker = "auto",
  limit = 20,
  open_quickfix = true,
  capabilities = nil,
  on_attach = nil,
}

local pickers =
  { auto = true, quickfix = true, telescope = true, ["fzf-lua"] = true, snacks = true }

---Merges `override` into `base` recursively. Unlike `vim.tbl_deep_extend`, list values (such as
---`root_markers` or `settings.exclude`) replace the default instead of being merged by index.
---@param base table
---@param override table?
---@return table
function M.merge(base, override)
  local out = vim.deepcopy(base)
  if override == nil then
    return out
  end
  for k, v in pairs(override) do
    local cur = out[k]
    if
      type(v) == "table"
      and type(cur) == "table"
      and not vim.islist(v)
      and not vim.islist(cur)
      and getmetatable(v) == nil
    then
      out[k] = M.merge(cur, v)
    elseif type(v) == "table" and getmetatable(v) == nil then
      out[k] = vim.deepcopy(v)
    else
      out[k] = v
    end
  end
  return out
end

---Checks user options; returns an error message for the first invalid one.
---@param opts semcode.Opts
---@return boolean ok
---@return string? err
function M.validate(opts)
  local types = {
    cmd = { "table", "function" },
    root_markers = { "table" },
    filetypes = { "table" },
    settings = { "table" },
    picker = { "string" },
    limit = { "number" },
    open_quickfix = { "boolean" },
    capabilities = { "table" },
    on_attach = { "function" },
  }
  if type(opts) ~= "table" then
    return false, ("opts: expected table, got %s"):format(type(opts))
  end
  for name, allowed in vim.spairs(types) do
    local v = opts[name]
    if v ~= nil and not vim.list_contains(allowed, type(v)) then
      return false, ("%s: expected %s, got %s"):format(name, table.concat(allowed, " or "), type(v))
    end
  end
  if opts.picker ~= nil and not pickers[opts.picker] then
    return false,
      ("picker: expected one of auto, quickfix, telescope, fzf-lua, snacks, got %q"):format(
        opts.picker
      )
  end
  if opts.limit ~= nil and (opts.limit < 1 or opts.limit > 200 or opts.limit % 1 ~= 0) then
    return false, ("limit: expected an integer in 1..200, got %s"):format(opts.limit)
  end
  if type(opts.cmd) == "table" and (#opts.cmd == 0 or type(opts.cmd[1]) ~= "string") then
    return false, "cmd: expected a non-empty list of strings"
  end
  return true
end

---@type semcode.Config
M.options = vim.deepcopy(M.defaults)

---Whether setup() has been called.
M.did_setup = false

---Resolves user options against the defaults and stores them.
---@param opts semcode.Opts?
---@return semcode.Config
function M.set(opts)
  opts = opts or {}
  local ok, err = M.validate(opts)
  if not ok then
    error("semcode: invalid option " .. err, 0)
  end
  M.options = M.merge(M.defaults, opts)
  M.did_setup = true
  return M.options
end

---The resolved configuration.
---@return semcode.Config
function M.get()
  return M.options
end

---Server settings as a JSON object (an empty table would otherwise be sent as `[]`).
---@param settings table?
---@return table
function M.settings_object(settings)
  if settings == nil or next(settings) == nil then
    return vim.empty_dict()
  end
  return settings
end

return M
