/**
 * "Treelens: Show Tokenization": the model text of the active folder in a webview,
 * coloured token by token, with the token count and whether the tree was truncated.
 * The page is static: no scripts, no remote resources, a CSP that allows only its own
 * nonce'd stylesheet.
 */
import { randomBytes } from "node:crypto";
import { errorMessage } from "../common/log";
import type { ClassifyResult, TokenizeParams, TokenizeResult } from "../protocol";
import { TOKENIZE } from "../protocol";
import { target, type CommandContext } from "./context";

export const TOKEN_COLOURS = 6;

export async function showTokenization(context: CommandContext): Promise<void> {
  const { api, labels } = context;
  const where = await target(context);
  if (!where) {
    return;
  }
  let tokens: TokenizeResult;
  try {
    const params: TokenizeParams = { folder: where.folder.uri };
    tokens = await api.withProgress("Treelens: tokenizing…", () =>
      where.daemon.request<TokenizeResult>(TOKENIZE, params),
    );
  } catch (error) {
    await api.showErrorMessage(`Treelens could not tokenize ${where.folder.name}: ${errorMessage(error)}`);
    return;
  }
  const panel = api.createWebview("treelens.tokenization", `Treelens Tokens: ${where.folder.name}`);
  panel.setHtml(
    tokenizationHtml(tokens, {
      folderName: where.folder.name,
      result: labels.latest(where.folder),
      nonce: randomBytes(16).toString("base64"),
    }),
  );
}

export interface PageInfo {
  folderName: string;
  result: ClassifyResult | undefined;
  nonce: string;
}

export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}';`;
}

export function tokenizationHtml(tokens: TokenizeResult, page: PageInfo): string {
  const spans = tokens.tokens
    .map((token, index) => {
      const colour = index % TOKEN_COLOURS;
      return `<span class="t${colour}" title="#${index} id ${token.id}">${escapeHtml(token.text)}</span>`;
    })
    .join("");
  const truncated =
    page.result === undefined ? "" : page.result.truncated ? " · truncated to fit the model" : " · not truncated";
  const palette = Array.from(
    { length: TOKEN_COLOURS },
    (_, index) => `.t${index} { background: var(--vscode-charts-${CHART_COLOURS[index]}); }`,
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(page.nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Treelens tokens</title>
<style nonce="${page.nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); white-space: pre-wrap; line-height: 1.6; }
pre span { border-radius: 2px; color: var(--vscode-editor-background); }
${palette}
</style>
</head>
<body>
<h2>${escapeHtml(page.folderName)}</h2>
<p id="summary">${tokens.tokenCount.toLocaleString("en-US")} tokens${truncated}</p>
<pre>${spans}</pre>
</body>
</html>
`;
}

const CHART_COLOURS = ["blue", "green", "yellow", "orange", "purple", "red"];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
