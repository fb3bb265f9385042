/**
 * "Treelens: Send Feedback": every label the model knows in a multi-select list, the
 * predicted ones ticked; the person confirms or corrects them, may add a comment, and the
 * daemon stores the answer (`treelens/submitFeedback`) for the next training run.
 */
import { errorMessage } from "../common/log";
import type { Pick } from "../common/vscodeapi";
import type { ClassifyResult, SubmitFeedbackParams, SubmitFeedbackResult } from "../protocol";
import { SUBMIT_FEEDBACK } from "../protocol";
import { target, type CommandContext } from "./context";

/** The pick list: the result's labels in model order, the predicted ones ticked. */
export function labelPicks(result: ClassifyResult): Pick<string>[] {
  return Object.entries(result.probabilities).map(([label, probability]) => ({
    label,
    description: `p = ${probability.toFixed(3)}`,
    picked: result.labels.includes(label),
    value: label,
  }));
}

/** {label: 0|1} for every label the model knows. */
export function feedbackLabels(result: ClassifyResult, chosen: readonly string[]): Record<string, 0 | 1> {
  return Object.fromEntries(Object.keys(result.probabilities).map((label) => [label, chosen.includes(label) ? 1 : 0]));
}

export async function sendFeedback(context: CommandContext): Promise<void> {
  const { api, labels } = context;
  const where = await target(context);
  if (!where) {
    return;
  }
  let result = labels.latest(where.folder);
  if (!result) {
    const state = await labels.refresh(where.folder);
    if (state.kind !== "result") {
      await api.showErrorMessage(
        `Treelens has no labels for ${where.folder.name} to correct: ${state.kind === "error" ? state.message : "still classifying"}`,
      );
      return;
    }
    result = state.result;
  }
  const picked = await api.showMultiPick(labelPicks(result), {
    title: `Treelens feedback for ${where.folder.name}`,
    placeholder: "Tick every label that fits this project, then press Enter",
  });
  if (!picked) {
    return;
  }
  const comment = await api.showInputBox({
    title: `Treelens feedback for ${where.folder.name}`,
    prompt: "Comment (optional): press Enter to send, Escape to cancel",
    placeholder: "e.g. the API lives in services/",
  });
  if (comment === undefined) {
    return;
  }
  const chosen = picked.map((item) => item.value);
  const params: SubmitFeedbackParams = { folder: where.folder.uri, labels: feedbackLabels(result, chosen) };
  if (comment.trim() !== "") {
    params.comment = comment.trim();
  }
  let answer: SubmitFeedbackResult;
  try {
    answer = await where.daemon.request<SubmitFeedbackResult>(SUBMIT_FEEDBACK, params);
  } catch (error) {
    await api.showErrorMessage(`Treelens could not store the feedback: ${errorMessage(error)}`);
    return;
  }
  const summary = chosen.length > 0 ? chosen.join(", ") : "no labels";
  await api.showInformationMessage(
    answer.stored
      ? `Thank you: feedback #${answer.id} for ${where.folder.name} stored (${summary}).`
      : `Treelens already had this feedback for ${where.folder.name} (#${answer.id}, ${summary}).`,
  );
}
