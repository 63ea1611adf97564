---@mod semcode.lsp Registers the server, finds clients, tracks indexing progress

local config = require("semcode.config")
local util = require("semcode.util")

local M = {}

M.name = "semcode"

local has_011 = vim.fn.has("nvim-0.11") == 1

---@type table<integer, semcode.ClientState>
M.state = {}

local function redraw()
  pcall(vim.cmd.redrawstatus)
end

---Asks the server for `semcode/status` and stores the result for the statusline.
---@param client vim.lsp.Client
---@param cb? fun(err: lsp.ResponseError?, result: table?)
function M.refresh_status(client, cb)
  util.request(client, "semcode/status", vim.empty_dict(), function(err, result)
    if not err and type(result) == "table" then
      local st = M.state[client.id] or {}
      st.server = result
      M.state[client.id] = st
      redraw()
    end
    if cb then
      cb(err, result)
    end
  end)
end

---@param ev table LspProgress autocmd data
local function on_progress(ev)
  local data = ev.data or {}
  local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
  if not client or client.name ~= M.name then
    return
  end
  local value = data.params and data.params.value
  if type(value) ~= "table" then
    return
  end
  local st = M.state[client.id] or {}
  M.state[client.id] = st
  if value.kind == "begin" then
    st.indexing = true
    st.percentage = value.percentage or 0
    st.message = value.message
  elseif value.kind == "report" then
    st.indexing = true
    st.percentage = value.percentage or st.percentage
    st.message = value.message or st.message
  elseif value.kind == "end" then
    st.indexing = false
    st.percentage = nil
    st.message = value.message
    M.refresh_status(client)
  end
  redraw()
end

---Builds the client config shared by the 0.11 and 0.10 paths.
---@param opts semcode.Config
---@return table
function M.client_config(opts)
  local settings = config.settings_object(opts.settings)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  if opts.capabilities then
    capabilities = vim.tbl_deep_extend("force", capabilities, opts.capabilities)
  end
  return {
    name = M.name,
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = settings,
    settings = { semcode = settings },
    capabilities = capabilities,
    on_attach = opts.on_attach,
    on_init = function(client)
      M.state[client.id] = M.state[client.id] or {}
    end,
    on_exit = function(_, _, client_id)
      M.state[client_id] = nil
      vim.schedule(redraw)
    end,
  }
end

---The workspace root for a buffer (searched from the cwd when the buffer has no file). Markers
---are tried in order; a nested list holds markers of equal priority.
---@param bufnr integer
---@param markers (string|string[])[]
---@return string?
function M.find_root(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local dir = (name ~= "" and vim.bo[bufnr].buftype == "") and vim.fs.dirname(name)
    or vim.fn.getcwd()
  for _, marker in ipairs(markers) do
    local found = vim.fs.find(marker, { upward = true, path = dir, limit = 1 })
    if found[1] then
      return vim.fs.dirname(found[1])
    end
  end
  return nil
end

local augroup = vim.api.nvim_create_augroup("semcode.lsp", { clear = true })

---@param bufnr integer
---@param opts semcode.Config
local function start_010(bufnr, opts)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return
  end
  if not vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype) then
    return
  end
  local root = M.find_root(bufnr, opts.root_markers)
  if not root then
    return
  end
  local cfg = M.client_config(opts)
  cfg.root_dir = root
  cfg.filetypes, cfg.root_markers = nil, nil
  vim.lsp.start(cfg, { bufnr = bufnr })
end

---Registers the server with Neovim: `vim.lsp.config` + `vim.lsp.enable` on 0.11+, a FileType
---autocmd with `vim.lsp.start` on 0.10.
---@param opts semcode.Config
function M.register(opts)
  vim.api.nvim_clear_autocmds({ group = augroup })
  vim.api.nvim_create_autocmd("LspProgress", { group = augroup, callback = on_progress })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = augroup,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == M.name then
        local st = M.state[client.id] or {}
        M.state[client.id] = st
        if not st.server and not st.asked then
          st.asked = true
          M.refresh_status(client)
        end
      end
    end,
  })

  if has_011 then
    local cfg = M.client_config(opts)
    -- replace (not merge) so that list options set by a later setup() call win
    vim.lsp.config[M.name] = cfg
    vim.lsp.enable(M.name)
  else
    vim.api.nvim_create_autocmd("FileType", {
      group = augroup,
      pattern = opts.filetypes,
      callback = function(ev)
        start_010(ev.buf, opts)
      end,
    })
    if vim.v.vim_did_enter == 1 then
      for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
        if vim.api.nvim_buf_is_loaded(bufnr) then
          start_010(bufnr, opts)
        end
      end
    end
  end
end

---@param client vim.lsp.Client
---@return boolean
function M.is_stopped(client)
  if has_011 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

---All running semcode clients.
---@return vim.lsp.Client[]
function M.clients()
  return vim.lsp.get_clients({ name = M.name })
end

---@param path string
---@param dir string
---@return boolean
local function inside(path, dir)
  return path == dir or vim.startswith(path, dir:gsub("/$", "") .. "/")
end

---The semcode client for a buffer: one attached to it, else one whose workspace contains the
---buffer's file (or the cwd), else any running one.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.get_client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local attached = vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
  if attached[1] then
    return attached[1]
  end
  local all = M.clients()
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == "" then
    path = vim.fn.getcwd()
  end
  for _, client in ipairs(all) do
    for _, folder in ipairs(client.workspace_folders or {}) do
      if inside(path, vim.uri_to_fname(folder.uri)) then
        return client
      end
    end
    if client.root_dir and inside(path, client.root_dir) then
      return client
    end
  end
  return all[1]
end

---Starts a client for the cwd's workspace without attaching it to a buffer.
---@return vim.lsp.Client?
---@return string? err
function M.start_detached()
  local opts = config.get()
  local root = M.find_root(vim.api.nvim_get_current_buf(), opts.root_markers) or vim.fn.getcwd()
  local cfg = M.client_config(opts)
  cfg.root_dir = root
  cfg.workspace_folders = { { uri = vim.uri_from_fname(root), name = root } }
  cfg.filetypes, cfg.root_markers = nil, nil
  if type(cfg.cmd) == "table" and vim.fn.executable(cfg.cmd[1]) == 0 then
    return nil, ("%s is not executable"):format(cfg.cmd[1])
  end
  local id
  if has_011 then
    id = vim.lsp.start(cfg, { attach = false })
  else
    id = vim.lsp.start_client(cfg)
  end
  local client = id and vim.lsp.get_client_by_id(id)
  if not client then
    return nil, "could not start the server"
  end
  return client
end

---Calls `fn` with a ready client: the buffer's, or a new one for the cwd when setup() was called.
---@param bufnr integer
---@param fn fun(client: vim.lsp.Client)
function M.with_client(bufnr, fn)
  local client = M.get_client(bufnr)
  if not client then
    if not config.did_setup then
      vim.notify(
        "semcode: no server is running; call require('semcode').setup() first",
        vim.log.levels.ERROR
      )
      return
    end
    local err
    client, err = M.start_detached()
    if not client then
      vim.notify("semcode: " .. tostring(err), vim.log.levels.ERROR)
      return
    end
  end
  if client.initialized then
    fn(client)
    return
  end
  local deadline = vim.uv.now() + 30000
  local timer = assert(vim.uv.new_timer())
  timer:start(
    50,
    50,
    vim.schedule_wrap(function()
      if client.initialized or M.is_stopped(client) or vim.uv.now() > deadline then
        timer:stop()
        timer:close()
        if client.initialized then
          fn(client)
        else
          vim.notify("semcode: the server did not initialize", vim.log.levels.ERROR)
        end
      end
    end)
  )
end

return M
