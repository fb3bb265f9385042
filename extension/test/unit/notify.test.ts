import assert from "node:assert/strict";
import { test } from "node:test";
import { ACTION_TITLES, crashed, notInstalled } from "../../src/common/problems";
import { ProblemNotifier } from "../../src/notify";
import { FakeApi } from "./fakes";

test("a problem is shown once until reset, and its buttons run the fixes", async () => {
  const api = new FakeApi();
  const ran: string[] = [];
  const notifier = new ProblemNotifier(api, {
    openSettings: () => ran.push("openSettings"),
    selectInterpreter: () => ran.push("selectInterpreter"),
    showLog: () => ran.push("showLog"),
    restart: () => ran.push("restart"),
  });
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
