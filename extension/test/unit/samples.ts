/** Results shaped as the daemon sends them (DESIGN.md's protocol table). */
import type { ClassifyResult, SuggestQuerySetResult, TokenizeResult } from "../../src/protocol";

export function classifyResult(overrides: Partial<ClassifyResult> = {}): ClassifyResult {
  return {
    folder: "file:///work/app",
    labels: ["backend", "has_api"],
    uncertain: [],
    noProjectFiles: false,
    probabilities: {
      backend: 0.93,
      frontend: 0.04,
      mobile: 0.01,
      has_api: 0.88,
      desktop: 0.02,
      cli: 0.11,
      library: 0.2,
      iac: 0.05,
    },
    thresholds: {
      backend: 0.5,
      frontend: 0.5,
      mobile: 0.5,
      has_api: 0.45,
      desktop: 0.5,
      cli: 0.5,
      library: 0.5,
      iac: 0.5,
    },
    tokenCount: 1234,
    truncated: false,
    modelVersion: "treelens-default-1.0.0",
    languages: ["python", "c++"],
    technologies: ["flask", "docker"],
    elapsedMs: 41.6,
    ...overrides,
  };
}

export function querySetResult(overrides: Partial<SuggestQuerySetResult> = {}): SuggestQuerySetResult {
  return {
    engine: "semgrep",
    selected: ["python.flask.security.injection.tainted-sql-string", "python.lang.security.audit.eval-detected"],
    excludedCount: 1965,
    totalCount: 1967,
    reasons: {
      "java.spring.security.audit.cookie-missing-httponly": "language java not in the project",
      "java.lang.security.audit.xxe": "language java not in the project",
      "python.django.security.audit.csrf-exempt": "technology django not detected",
    },
    config: {
      format: "semgrep-rules",
      fileName: "treelens-semgrep.yaml",
      text: "rules:\n- id: python.flask.security.injection.tainted-sql-string\n",
      args: ["--config", "treelens-semgrep.yaml"],
    },
    basis: "model, languages and technologies",
    note: "",
    ...overrides,
  };
}

export function tokenizeResult(): TokenizeResult {
  return {
    text: "app.py\n<script>x</script>\n",
    tokens: [
      { id: 10, text: "app" },
      { id: 11, text: ".py" },
      { id: 12, text: "\n" },
      { id: 13, text: "<script>" },
      { id: 14, text: "x</script>" },
      { id: 12, text: "\n" },
    ],
    tokenCount: 6,
  };
}
