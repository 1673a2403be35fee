import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, client, type TestServer } from '../support/server.js';
import { startScriptedOpenAi, type ScriptedOpenAi } from '../support/scripted-openai.js';

let server: TestServer;
let model: ScriptedOpenAi;
beforeAll(async () => {
  model = await startScriptedOpenAi({
    respond: (req) => {
      const sys = req.system ?? '';
      if (/classif/i.test(sys)) return { content: JSON.stringify({ kind: 'complex', confidence: 'high', reason: 'many steps' }) };
      if (/architect/i.test(sys)) return { content: JSON.stringify({ subtasks: [ { id: 'a', description: 'write a', agent: 'coder', dependencies: [] }, { id: 'b', description: 'write b', agent: 'coder', dependencies: [] }, { id: 'c', description: 'test', agent: 'debug', dependencies: ['a', 'b'] } ] }) };
      return { content: 'done: ' + String(req.messages.at(-1)?.content).slice(0, 40) };
    },
  });
  server = await startServer({ OPENAI_BASE_URL: model.baseURL, OPENAI_API_KEY: 'x', LOG_LEVEL: 'debug' });
});
afterAll(async () => { await server?.dispose(); await model?.close(); });

it('smoke', async () => {
  const api = client(server.api);
  const s = await api.post('/sessions', {});
  const id = s.body.session_id;
  await api.post(`/sessions/${id}/messages`, { content: 'Build a feature with several steps and tests' });
  let plan: any;
  for (let i = 0; i < 100; i++) {
    const sess = await api.get(`/sessions/${id}`);
    if (sess.body.current_plan_id) { plan = (await api.get(`/plans/${sess.body.current_plan_id}`)).body; if (plan.status === 'awaiting_approval') break; }
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(plan?.status, plan?.source);
  const d = await api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval.approval_request_id, decision: 'approve' });
  console.log(d.status);
  for (let i = 0; i < 100; i++) {
    plan = (await api.get(`/plans/${plan.plan_id}`)).body;
    if (plan.status === 'completed' || plan.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(plan.status, JSON.stringify(plan.progress), JSON.stringify(plan.usage));
  console.log(server.logs.filter((l) => l.level !== 'debug').map((l) => JSON.stringify(l)).join('\n'));
  expect(plan.status).toBe('completed');
});
