-- A tiny test harness for `nvim -l tests/<name>_spec.lua`.
-- Each spec: local T = dofile(".../helpers.lua"); T.it("...", fn); ...; T.finish()
-- Prints "ok - name" / "FAIL - name" lines and a "# spec: N ok, N failing" summary; appends
-- "passed failed" to $SEMCODE_TEST_RESULTS when set; exits non-zero on failure.

local T = { passed = 0, failed = 0, failures = {}, cleanups = {} }

local source = debug.getinfo(1, "S").source:sub(2)
T.tests_dir = vim.fs.dirname(vim.fn.fnamemodify(source, ":p"))
T.root = vim.fs.dirname(T.tests_dir)
T.fixture = T.tests_dir .. "/fixture"

-- Load the plugin from this checkout: `-l` does not load plugins or user config.
vim.opt.runtimepath:prepend(T.root)
vim.cmd.runtime("plugin/semcode.lua")

io.stdout:setvbuf("line")

local function out(s)
  io.stdout:write(s .. "\n")
end
T.log = out

---@param name string
---@param fn fun()
function T.it(name, fn)
  local start = vim.uv.hrtime()
  local ok, err = xpcall(fn, debug.traceback)
  local ms = (vim.uv.hrtime() - start) / 1e6
  if ok then
    T.passed = T.passed + 1
    out(("ok - %s (%.0f ms)"):format(name, ms))
  else
    T.failed = T.failed + 1
    T.failures[#T.failures + 1] = name
    out(("FAIL - %s (%.0f ms)\n    %s"):format(name, ms, tostring(err):gsub("\n", "\n    ")))
  end
  return ok
end

---@param actual any
---@param expected any
---@param msg? string
function T.eq(actual, expected, msg)
  if not vim.deep_equal(actual, expected) then
    error(
      ("%sexpected %s, got %s"):format(
        msg and (msg .. ": ") or "",
        vim.inspect(expected),
        vim.inspect(actual)
      ),
      2
    )
  end
end

---@param cond any
---@param msg? string
function T.ok(cond, msg)
  if not cond then
    error(msg or "assertion failed", 2)
  end
end

---Waits for `cond()` to return a truthy value, running the event loop; errors on timeout or
---when an ERROR notification arrives meanwhile.
---@param timeout integer ms
---@param cond fun(): any
---@param what string
---@return any
function T.wait(timeout, cond, what)
  local value
  local nmsg = #T.messages
  local ok = vim.wait(timeout, function()
    -- an error notification (e.g. a failed request) ends the wait at once
    for i = nmsg + 1, #T.messages do
      if T.messages[i].level >= vim.log.levels.ERROR then
        error(("%s failed: %s"):format(what, tostring(T.messages[i].msg)), 0)
      end
    end
    value = cond()
    return value
  end, 20)
  if not ok then
    error(("timed out after %d ms waiting for %s"):format(timeout, what), 2)
  end
  return value
end

---Records vim.notify messages.
T.messages = {}
vim.notify = function(msg, level)
  T.messages[#T.messages + 1] = { msg = msg, level = level or vim.log.levels.INFO }
  if vim.env.SEMCODE_TEST_VERBOSE then
    out("  notify: " .. tostring(msg))
  end
end

---@param pattern string Lua pattern
---@return string?
function T.find_message(pattern)
  for _, m in ipairs(T.messages) do
    if tostring(m.msg):find(pattern) then
      return m.msg
    end
  end
end

---@param fn fun()
function T.cleanup(fn)
  T.cleanups[#T.cleanups + 1] = fn
end

function T.finish()
  for i = #T.cleanups, 1, -1 do
    local ok, err = pcall(T.cleanups[i])
    if not ok then
      out("cleanup failed: " .. tostring(err))
    end
  end
  -- not the "N passed, N failed" form: scripts/ci.sh prints the one closing line
  local spec = vim.fn.fnamemodify(arg and arg[0] or "", ":t:r")
  out(("# %s: %d ok, %d failing"):format(spec ~= "" and spec or "spec", T.passed, T.failed))
  local file = vim.env.SEMCODE_TEST_RESULTS
  if file and file ~= "" then
    local f = io.open(file, "a")
    if f then
      f:write(("%d %d\n"):format(T.passed, T.failed))
      f:close()
    end
  end
  io.stdout:flush()
  os.exit(T.failed == 0 and 0 or 1)
end

return T
