---@mod semcode.health :checkhealth semcode

local M = {}

local health = vim.health

---Runs a command, returning its result or nil when it could not be started.
---@param cmd string[]
---@param timeout integer ms
---@return vim.SystemCompleted?
---@return string? err
local function run(cmd, timeout)
  local ok, obj = pcall(vim.system, cmd, { text = true })
  if not ok then
    return nil, tostring(obj)
  end
  return obj:wait(timeout)
end

---@param s string?
---@return string
local function first_line(s)
  return vim.trim((s or ""):match("^[^\n]*") or "")
end

---The CLI prefix of the server command: `{ "semcode", "serve" }` gives `{ "semcode" }`.
---Returns nil when the command is not of that form (e.g. `python -m lsp_server`).
---@param cmd string[]
---@return string[]?
function M.cli_base(cmd)
  if cmd[#cmd] == "serve" and #cmd >= 2 then
    return vim.list_slice(cmd, 1, #cmd - 1)
  end
  return nil
end

---Reports `semcode doctor --json` checks; returns false when doctor is not available.
---@param base string[]
local function check_doctor(base)
  local res, err = run(vim.list_extend(vim.deepcopy(base), { "doctor", "--json" }), 180000)
  if not res then
    health.warn("could not run `semcode doctor --json`: " .. tostring(err))
    return
  end
  local ok, data = pcall(vim.json.decode, res.stdout or "", { luanil = { object = true } })
  if ok and type(data) == "table" and type(data.checks) == "table" then
    for _, c in ipairs(data.checks) do
      local msg = tostring(c.name or "check")
      if c.detail and c.detail ~= "" then
        msg = msg .. ": " .. tostring(c.detail)
      end
      if c.ok then
        health.ok(msg)
      else
        health.error(msg, c.fix and { tostring(c.fix) } or nil)
      end
    end
    if #data.checks == 0 then
      health.info("`semcode doctor --json` reported no checks")
    end
    return
  end
  local out = (res.stderr or "") .. (res.stdout or "")
  if
    res.code ~= 0
    and (
      out:find("No such command")
      or out:find("invalid choice")
      or out:find("no such option")
      or out:find("unrecognized")
      or out:find("Usage:")
    )
  then
    health.info("`semcode doctor` is not available in this version; skipped")
  elseif res.code == 124 or res.signal ~= 0 then
    health.warn("`semcode doctor --json` timed out")
  else
    health.warn(
      ("`semcode doctor --json` gave no report (exit %d): %s"):format(res.code, first_line(out))
    )
  end
end

---@param client vim.lsp.Client
local function check_client(client)
  local util = require("semcode.util")
  local root = client.root_dir
    or (client.workspace_folders and client.workspace_folders[1] and vim.uri_to_fname(
      client.workspace_folders[1].uri
    ))
    or "?"
  local resp, err = util.request_sync(client, "semcode/status", vim.empty_dict(), 10000)
  if not resp then
    health.warn(("client %d (%s): no status: %s"):format(client.id, root, tostring(err)))
    return
  end
  if resp.err then
    health.error(
      ("client %d (%s): status failed: %s"):format(client.id, root, tostring(resp.err.message))
    )
    return
  end
  local s = resp.result or {}
  local summary = ("%s: %s, %s files, %s chunks"):format(
    root,
    tostring(s.state),
    tostring(s.files or 0),
    tostring(s.chunks or 0)
  )
  if s.model and s.model ~= vim.NIL then
    summary = summary .. ", model " .. tostring(s.model)
  end
  if s.state == "ready" then
    health.ok("index " .. summary)
  elseif s.state == "indexing" or s.state == "starting" then
    local text = require("semcode.util").format_status(require("semcode.lsp").state[client.id])
    health.info(("index %s (%s)"):format(summary, text))
  else
    health.error(
      "index " .. summary,
      s.lastError and s.lastError ~= vim.NIL and { tostring(s.lastError) } or nil
    )
  end
  if s.indexPath and s.indexPath ~= vim.NIL then
    health.info("index path: " .. tostring(s.indexPath))
  end
end

function M.check()
  local config = require("semcode.config")

  health.start("semcode: Neovim")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 0 then
    health.error("Neovim " .. version .. ": semcode needs 0.10 or newer")
    return
  end
  health.ok("Neovim " .. version)
  if config.did_setup then
    health.ok("setup() has been called")
  else
    health.warn("setup() has not been called", { "Add require('semcode').setup() to your config" })
  end

  health.start("semcode: server")
  local cmd = config.get().cmd
  local base
  if type(cmd) == "function" then
    health.info("cmd is a function; executable checks skipped")
  else
    local exe = cmd[1]
    if vim.fn.executable(exe) == 0 then
      health.error(("server executable `%s` not found"):format(exe), {
        "Install semcode (pip install semcode) so that `semcode` is on PATH",
        "or set `cmd` in require('semcode').setup({ cmd = { '/path/to/semcode', 'serve' } })",
      })
    else
      health.ok(("server executable: %s"):format(vim.fn.exepath(exe)))
      base = M.cli_base(cmd)
      local vcmd = vim.list_extend(vim.deepcopy(base or cmd), { "--version" })
      local res, err = run(vcmd, 30000)
      if res and res.code == 0 then
        health.ok("version: " .. first_line(res.stdout ~= "" and res.stdout or res.stderr))
      else
        health.warn(
          ("`%s` failed: %s"):format(
            table.concat(vcmd, " "),
            res and first_line(res.stderr ~= "" and res.stderr or res.stdout) or tostring(err)
          )
        )
      end
    end
  end

  health.start("semcode: model (semcode doctor)")
  if base then
    check_doctor(base)
  else
    health.info("the server command is not `<semcode> serve`; doctor checks skipped")
  end

  health.start("semcode: index")
  local clients = require("semcode.lsp").clients()
  if #clients == 0 then
    health.info("no semcode client is running (open a file of a workspace to start one)")
  end
  for _, client in ipairs(clients) do
    check_client(client)
  end

  health.start("semcode: pickers")
  local available = require("semcode.picker").available()
  local chosen = config.get().picker
  health.info(
    ("picker = %q, using %s"):format(chosen, require("semcode.picker").resolve(chosen, available))
  )
  for _, name in ipairs({ "telescope", "fzf-lua", "snacks" }) do
    if available[name] then
      health.ok(name .. " is installed")
    end
  end
end

return M
