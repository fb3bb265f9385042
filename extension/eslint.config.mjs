// Lint the TypeScript sources, tests and e2e harness with typescript-eslint's recommended rules.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["extension/out/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["extension/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      eqeqeq: "error",
      "no-console": "off",
    },
  },
);
