-- semcode: defines the :Semcode command and <Plug> mappings only; call
-- require("semcode").setup() to register the language server.
if vim.g.loaded_semcode then
  return
end
vim.g.loaded_semcode = true

vim.api.nvim_create_user_command("Semcode", function(cmd)
  require("semcode.commands").run(cmd)
end, {
  nargs = "*",
  range = true,
  bang = true,
  desc = "semcode: semantic code search",
  complete = function(arglead, cmdline)
    return require("semcode.commands").complete(arglead, cmdline)
  end,
})

vim.keymap.set("n", "<Plug>(semcode-search)", function()
  require("semcode").search()
end, { desc = "semcode: search the workspace" })

vim.keymap.set("x", "<Plug>(semcode-search)", function()
  local text = vim.fn.getregion(vim.fn.getpos("v"), vim.fn.getpos("."), { type = vim.fn.mode() })
  vim.api.nvim_feedkeys(vim.keycode("<Esc>"), "nx", false)
  require("semcode").search(table.concat(text, " "))
end, { desc = "semcode: search for the selected text" })

vim.keymap.set("n", "<Plug>(semcode-similar)", "<Cmd>Semcode similar<CR>", {
  desc = "semcode: find code similar to the symbol under the cursor",
})

vim.keymap.set("x", "<Plug>(semcode-similar)", ":Semcode similar<CR>", {
  silent = true,
  desc = "semcode: find code similar to the selected lines",
})
