import assert from "node:assert/strict";
import { test } from "node:test";
import { ACTION_TITLES, crashed, notInstalled, unresponsiveRestarted } from "../../src/common/problems";
import { ProblemNotifier } from "../../src/notify";
import { FakeApi } from "./fakes";

/** A notifier on a fake API whose fixes record their names in `ran`, in order. */
function recordingNotifier(): { api: FakeApi; ran: string[]; notifier: ProblemNotifier } {
  const api = new FakeApi();
  const ran: string[] = [];
  const notifier = new ProblemNotifier(api, {
    openSettings: () => ran.push("openSettings"),
    selectInterpreter: () => ran.push("selectInterpreter"),
    showLog: () => ran.push("showLog"),
    restart: () => ran.push("restart"),
  });
  return { api, ran, notifier };
}

test("a problem is shown once until reset, and its buttons run the fixes", async () => {
  const { api, ran, notifier } = recordingNotifier();
  api.answers.push(ACTION_TITLES.selectInterpreter);
  await notifier.show(notInstalled("python3"));
  await notifier.show(notInstalled("python3"));
  assert.equal(api.messages("error").length, 1);
  assert.deepEqual(ran, ["selectInterpreter"]);
  api.answers.push(undefined);
  await notifier.show(crashed(6));
  assert.equal(api.messages("error").length, 2);
  notifier.reset();
  api.answers.push(ACTION_TITLES.openSettings);
  await notifier.show(notInstalled("python3"));
  assert.equal(api.messages("error").length, 3);
  assert.deepEqual(ran, ["selectInterpreter", "openSettings"]);
});

test("news that needs no fix (a deaf daemon restarted) is a warning with a button to the log", async () => {
  const { api, ran, notifier } = recordingNotifier();
  api.answers.push(ACTION_TITLES.showLog);
  await notifier.show(unresponsiveRestarted(20));
  assert.deepEqual(api.messages("warning"), [
    "The Treelens daemon did not answer for 20 s, so Treelens restarted it. If this happens again, its log in the Treelens output may say why.",
  ]);
  assert.deepEqual(api.messages("error"), []);
  assert.deepEqual(ran, ["showLog"]);
});
