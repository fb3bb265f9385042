/** What clicking the status bar item offers: the Treelens commands in a quick pick. */
import type { Pick, VscodeApi } from "../common/vscodeapi";

export const COMMANDS = {
  suggestQuerySet: "treelens.suggestQuerySet",
  sendFeedback: "treelens.sendFeedback",
  showTokenization: "treelens.showTokenization",
  restart: "treelens.restart",
  showLog: "treelens.showLog",
  showMenu: "treelens.showMenu",
} as const;

export const MENU_ITEMS: Pick<string>[] = [
  { label: "$(checklist) Suggest SAST Query Set", detail: "Semgrep, CodeQL or Bandit queries that fit this project", value: COMMANDS.suggestQuerySet },
  { label: "$(feedback) Send Feedback", detail: "Confirm or correct the labels", value: COMMANDS.sendFeedback },
  { label: "$(symbol-string) Show Tokenization", detail: "What the model reads, token by token", value: COMMANDS.showTokenization },
  { label: "$(debug-restart) Restart Daemon", value: COMMANDS.restart },
  { label: "$(output) Show Daemon Log", value: COMMANDS.showLog },
];

export async function showMenu(api: VscodeApi): Promise<void> {
  const picked = await api.showQuickPick(MENU_ITEMS, { title: "Treelens", placeholder: "Choose a Treelens command" });
  if (picked) {
    await api.executeCommand(picked.value);
  }
}
