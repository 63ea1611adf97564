// @ts-check
import eslint from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["out/**", "node_modules/**", ".ci-cache/**", ".test-out/**", "test/fixture/**", "test/e2e/extension/out/**"] },
  eslint.configs.recommended,
  {
    files: ["src/**/*.ts", "test/e2e/extension/src/**/*.ts"],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      curly: "error",
      eqeqeq: ["error", "smart"],
    },
  },
  {
    files: ["test/**/*.mjs", "scripts/**/*.mjs", "eslint.config.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    // functions passed to playwright's page.waitForFunction run in the browser
    files: ["test/e2e/**/*.mjs"],
    languageOptions: { globals: { ...globals.browser } },
  },
);
