/**
 * Shows a daemon problem once: the same message is not repeated while the daemon keeps
 * failing the same way (back-off restarts, every classify of every folder), and the
 * notification's buttons run the fixes.
 */
import { ACTION_TITLES, type Problem, type ProblemAction } from "./common/problems";
import type { VscodeApi } from "./common/vscodeapi";

export type ActionHandlers = Record<ProblemAction, () => unknown>;

export class ProblemNotifier {
  private readonly shown = new Set<string>();

  constructor(
    private readonly api: VscodeApi,
    private readonly handlers: ActionHandlers,
  ) {}

  async show(problem: Problem): Promise<void> {
    if (this.shown.has(problem.message)) {
      return;
    }
    this.shown.add(problem.message);
    const titles = problem.actions.map((action) => ACTION_TITLES[action]);
    const picked =
      problem.severity === "warning"
        ? await this.api.showWarningMessage(problem.message, ...titles)
        : await this.api.showErrorMessage(problem.message, ...titles);
    const action = problem.actions.find((candidate) => ACTION_TITLES[candidate] === picked);
    if (action) {
      await this.handlers[action]();
    }
  }

  /** After the daemon started fine, a later failure is news again. */
  reset(): void {
    this.shown.clear();
  }
}
