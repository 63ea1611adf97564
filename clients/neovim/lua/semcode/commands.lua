---@mod semcode.commands The :Semcode command

local M = {}

---@class semcode.Subcommand
---@field run fun(args: string, cmd: table)
---@field complete? fun(arglead: string): string[]
---@field desc string

---@type table<string, semcode.Subcommand>
M.subcommands = {
  search = {
    desc = "search the workspace: :Semcode search [lang=X] [path=GLOB] [kind=K] [limit=N] {query}",
    run = function(args)
      local util = require("semcode.util")
      local query, opts = util.parse_query(args)
      require("semcode").search(query, opts)
    end,
    complete = function(arglead)
      local out = {}
      for _, k in ipairs({ "lang=", "path=", "kind=", "limit=", "minScore=" }) do
        if arglead ~= "" and vim.startswith(k, arglead) then
          out[#out + 1] = k
        end
      end
      return out
    end,
  },
  similar = {
    desc = "find code similar to the selected lines or the symbol under the cursor",
    run = function(_, cmd)
      if cmd.range and cmd.range > 0 then
        require("semcode").similar({ line1 = cmd.line1, line2 = cmd.line2 })
      else
        require("semcode").similar()
      end
    end,
  },
  reindex = {
    desc = "re-index the workspace (:Semcode reindex full, or reindex!, rebuilds it)",
    run = function(args, cmd)
      require("semcode").reindex({ full = cmd.bang or vim.trim(args) == "full" })
    end,
    complete = function(arglead)
      return vim.startswith("full", arglead) and { "full" } or {}
    end,
  },
  status = {
    desc = "show the server's index status",
    run = function()
      require("semcode").show_status()
    end,
  },
}

---Runs `:Semcode {subcommand} [args]`.
---@param cmd table The nvim_create_user_command callback argument
function M.run(cmd)
  local name, rest = cmd.args:match("^%s*(%S+)%s*(.-)%s*$")
  local sub = name and M.subcommands[name]
  if not sub then
    local names = vim.tbl_keys(M.subcommands)
    table.sort(names)
    vim.notify(
      ("semcode: %s; use :Semcode {%s}"):format(
        name and ("unknown subcommand %q"):format(name) or "missing subcommand",
        table.concat(names, "|")
      ),
      vim.log.levels.ERROR
    )
    return
  end
  sub.run(rest or "", cmd)
end

---Completion for `:Semcode`.
---@param arglead string
---@param cmdline string
---@return string[]
function M.complete(arglead, cmdline)
  local after = cmdline:match("^%s*%S*Semcode!?%s+(.*)$") or cmdline:match("Semcode!?%s+(.*)$")
  if after == nil then
    return {}
  end
  local words = vim.split(after, "%s+", { trimempty = false })
  if #words <= 1 then
    local names = vim.tbl_keys(M.subcommands)
    table.sort(names)
    return vim.tbl_filter(function(n)
      return vim.startswith(n, arglead)
    end, names)
  end
  local sub = M.subcommands[words[1]]
  if sub and sub.complete then
    return sub.complete(arglead)
  end
  return {}
end

return M
