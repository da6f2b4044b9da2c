/**
 * loadgen's RELP transport: the answer parser on its own (split reads,
 * several answers to a read, bad frames), and sessions against a scripted
 * server on loopback: the handshake, the window, acks in and out of order,
 * a graceful close, and each way a session fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RELP_WINDOW, RelpAnswerKind, RelpAnswerParser, RelpTransport, type RelpAnswerError,
} from '../../../src/ops/loadgen/transport-relp.js';
import type { ConnectionListener, ErrorKind, OutgoingMessage } from '../../../src/ops/loadgen/transport.js';
import { waitFor } from '../../helpers.js';
import { answering, OPEN_ACCEPTED, ScriptedRelpServer, type Script } from './scripted-relp-server.js';

type Answer = [txnr: number, kind: RelpAnswerKind, status: number];

function parse(chunks: (string | Buffer)[]): { answers: Answer[]; ok: boolean; error: RelpAnswerError | null } {
  const answers: Answer[] = [];
  const parser = new RelpAnswerParser((txnr, kind, status) => answers.push([txnr, kind, status]));
  let ok = true;
  for (const chunk of chunks) ok = parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk) && ok;
  return { answers, ok, error: parser.error };
}

const OPEN_ANSWER = `1 rsp ${OPEN_ACCEPTED.length} ${OPEN_ACCEPTED}\n`;
const STREAM = `${OPEN_ANSWER}2 rsp 6 200 OK\n3 rsp 37 500 record dropped: no sink stored it\n4 rsp 3 200\n0 serverclose 0\n`;
const STREAM_ANSWERS: Answer[] = [
  [1, RelpAnswerKind.Rsp, 200], [2, RelpAnswerKind.Rsp, 200], [3, RelpAnswerKind.Rsp, 500], [4, RelpAnswerKind.Rsp, 200],
  [0, RelpAnswerKind.ServerClose, -1],
];

test('answer parser: several answers in one read, each with its status; DATA is skipped by its length, LFs in it too', () => {
  const { answers, ok } = parse([STREAM]);
  assert.equal(ok, true);
  assert.deepEqual(answers, STREAM_ANSWERS);
});

test('answer parser: the same answers however the reads split them, down to a byte per read', () => {
  const bytes = Buffer.from(STREAM);
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(parse([bytes.subarray(0, cut), bytes.subarray(cut)]).answers, STREAM_ANSWERS, `split at ${cut}`);
  }
  const oneByteEach = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  assert.deepEqual(parse(oneByteEach).answers, STREAM_ANSWERS);
  // A frame waits for its trailer: nothing is handed out before it.
  assert.deepEqual(parse(['2 rsp 6 200 OK']).answers, []);
});

test('answer parser: the status is the three digits DATA starts with, else -1; commands other than rsp and serverclose are Other', () => {
  const statusOf = (data: string): number => parse([`7 rsp ${data.length} ${data}\n`]).answers[0]![2];
  assert.equal(statusOf('200 OK'), 200);
  assert.equal(statusOf('200'), 200);
  assert.equal(statusOf('500 refused: unknown token'), 500);
  assert.equal(statusOf('OK'), -1);
  assert.equal(statusOf('20'), -1);
  assert.equal(statusOf('2000 too many digits'), -1);
  assert.deepEqual(parse(['7 rsp 0\n']).answers, [[7, RelpAnswerKind.Rsp, -1]]);
  assert.deepEqual(parse(['5 syslog 3 abc\n', '6 rs 0\n', '8 serverclosed 0\n', '9 RSP 0\n']).answers.map((a) => a[1]),
    [RelpAnswerKind.Other, RelpAnswerKind.Other, RelpAnswerKind.Other, RelpAnswerKind.Other]);
});

test('answer parser: a bad frame stops it, naming what was wrong; the answers before it were handed out, none after', () => {
  const bad: [string, RelpAnswerError][] = [
    ['x rsp 0\n', 'bad_txnr'],
    [' rsp 0\n', 'bad_txnr'],
    ['1234567890 rsp 0\n', 'bad_txnr'],
    ['1  rsp 0\n', 'bad_command'],
    ['1 r5p 0\n', 'bad_command'],
    [`1 ${'r'.repeat(33)} 0\n`, 'bad_command'],
    ['1 rsp x\n', 'bad_datalen'],
    ['1 rsp 1234567890 x\n', 'bad_datalen'],
    ['1 rsp 3x200\n', 'bad_datalen'],
    ['1 rsp 3 200X', 'bad_trailer'],
    ['1 rsp 0 \n', 'bad_trailer'],
  ];
  for (const [input, error] of bad) {
    const result = parse(['2 rsp 6 200 OK\n', input, '3 rsp 6 200 OK\n']);
    assert.equal(result.ok, false, input);
    assert.equal(result.error, error, input);
    assert.deepEqual(result.answers, [[2, RelpAnswerKind.Rsp, 200]], input);
  }
});

/** What a connection told its agent. */
function recorder(): { listener: ConnectionListener; connected: number[]; failures: [ErrorKind, string, boolean][]; acks: number[] } {
  const connected: number[] = [];
  const failures: [ErrorKind, string, boolean][] = [];
  const acks: number[] = [];
  return {
    connected, failures, acks,
    listener: {
      connected: (micros) => connected.push(micros),
      failed: (kind, code, fatal) => failures.push([kind, code, fatal]),
      acknowledged: (sendMicros) => acks.push(sendMicros),
    },
  };
}

function messages(count: number, firstMicros = 1000): OutgoingMessage[] {
  return Array.from({ length: count }, (_, k) => ({ text: `<14>1 - host app - - - message ${k}`, sendMicros: firstMicros + k }));
}

async function scripted(t: { after(fn: () => Promise<void>): void }, script: Script): Promise<{ server: ScriptedRelpServer; transport: RelpTransport }> {
  const server = await ScriptedRelpServer.listen(script);
  t.after(() => server.close());
  return { server, transport: new RelpTransport({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 10_000 }) };
}

test('relp session: open with offers, at most a window of messages unanswered, every 200 an ack, then close answered before the end', async (t) => {
  const { server, transport } = await scripted(t, answering(null));
  const agent = recorder();
  const conn = transport.open('127.0.0.1', agent.listener);
  t.after(() => conn.destroy());
  const batch = messages(300);
  // Accepted before the session is open: they wait in the connection.
  conn.send(batch);
  assert.equal(conn.unacknowledged, 300);
  assert.equal(conn.pendingBytes, batch.reduce((sum, m) => sum + m.text.length, 0));

  await waitFor('the open answered', () => agent.connected.length === 1, Infinity);
  const session = server.sessions[0]!;
  const open = session.frames[0]!;
  assert.deepEqual([open.txnr, open.command], [1, 'open']);
  assert.deepEqual(open.data.split('\n').map((line) => line.split('=')[0]), ['relp_version', 'relp_software', 'commands']);
  assert.match(open.data, /^relp_version=0\nrelp_software=sluice-loadgen,[^\n]+\ncommands=syslog$/);

  await waitFor('a window of messages', () => session.syslog().length === RELP_WINDOW, Infinity);
  assert.equal(conn.unacknowledged, 300);
  const waiting = batch.slice(RELP_WINDOW).reduce((sum, m) => sum + m.text.length, 0);
  await waitFor('the window\'s frames written', () => conn.pendingBytes === waiting, Infinity);

  // Ten answers open the window by ten.
  for (const frame of session.unanswered().slice(0, 10)) session.answer(frame.txnr);
  await waitFor('ten more messages', () => session.syslog().length === RELP_WINDOW + 10, Infinity);
  assert.deepEqual(agent.acks, batch.slice(0, 10).map((m) => m.sendMicros));

  server.script = answering('200 OK');
  session.answerAll();
  await waitFor('every message acknowledged', () => agent.acks.length === 300, Infinity);
  assert.equal(session.maxUnanswered, RELP_WINDOW, 'never more than the window unanswered');
  assert.deepEqual(agent.acks, batch.map((m) => m.sendMicros), 'each ack with its own message\'s send time');
  assert.deepEqual(session.syslog().map((f) => [f.txnr, f.data]), batch.map((m, k) => [k + 2, m.text]), 'transaction numbers 2, 3, … in order');
  assert.equal(conn.unacknowledged, 0);
  assert.equal(conn.pendingBytes, 0);

  conn.close();
  await waitFor('the session ended by the client', () => session.ended, Infinity);
  assert.deepEqual(session.frames.at(-1), { txnr: 302, command: 'close', data: '' });
  assert.equal(session.frameError, null);
  assert.deepEqual(agent.failures, []);
});

test('relp session: answers out of order are each acknowledged; a second answer to one transaction fails the session', async (t) => {
  const { server, transport } = await scripted(t, answering(null));
  const agent = recorder();
  const conn = transport.open('127.0.0.1', agent.listener);
  t.after(() => conn.destroy());
  conn.send(messages(3));
  await waitFor('three messages', () => server.sessions[0]?.syslog().length === 3, Infinity);
  const session = server.sessions[0]!;
  session.answer(4);
  await waitFor('the ack of the third message', () => agent.acks.length === 1, Infinity);
  assert.deepEqual(agent.acks, [1002]);
  assert.equal(conn.unacknowledged, 3, 'the window moves only once the oldest is answered');
  session.answer(3);
  session.answer(2);
  await waitFor('every ack', () => agent.acks.length === 3, Infinity);
  assert.deepEqual(agent.acks, [1002, 1001, 1000]);
  assert.equal(conn.unacknowledged, 0);
  assert.deepEqual(agent.failures, []);

  session.answer(3);
  await waitFor('the failure', () => agent.failures.length === 1, Infinity);
  assert.deepEqual(agent.failures, [['other', 'RELP_UNEXPECTED', true]]);
});

test('relp session: closed while still opening, it sends what it was given and then close; it reports acks, not the connection', async (t) => {
  const { server, transport } = await scripted(t, answering('200 OK'));
  const agent = recorder();
  const conn = transport.open('127.0.0.1', agent.listener);
  t.after(() => conn.destroy());
  conn.send(messages(2));
  conn.close();
  await waitFor('the session ended by the client', () => server.sessions[0]?.ended, Infinity);
  assert.deepEqual(server.sessions[0]!.frames.map((f) => [f.txnr, f.command]), [[1, 'open'], [2, 'syslog'], [3, 'syslog'], [4, 'close']]);
  await waitFor('both acks', () => agent.acks.length === 2, Infinity);
  assert.deepEqual(agent.connected, [], 'the agent closed it before it was open');
  assert.deepEqual(agent.failures, []);
});

test('relp session: a refused open, a non-200 answer, serverclose, a bad frame and a plain close each fail it, by kind and code', async (t) => {
  const cases: { what: string; script: Script; expected: [ErrorKind, string]; acks: number }[] = [
    {
      what: 'open answered 500',
      script: (session, frame) => { if (frame.command === 'open') session.answer(frame.txnr, '500 required command not supported by client'); },
      expected: ['connect', 'RELP_OPEN_500'], acks: 0,
    },
    {
      what: 'the second message answered 500',
      script: (session, frame) => {
        if (frame.command === 'open') session.answer(frame.txnr, OPEN_ACCEPTED);
        else session.answer(frame.txnr, frame.txnr === 3 ? '500 record dropped: no sink stored it' : '200 OK');
      },
      expected: ['other', 'RELP_500'], acks: 1,
    },
    {
      what: 'an answer without a status code',
      script: (session, frame) => session.answer(frame.txnr, frame.command === 'open' ? OPEN_ACCEPTED : 'fine'),
      expected: ['other', 'RELP_NO_STATUS'], acks: 0,
    },
    {
      what: 'serverclose after the first answer',
      script: (session, frame) => {
        if (frame.command === 'open') {
          session.answer(frame.txnr, OPEN_ACCEPTED);
          return;
        }
        session.answer(frame.txnr);
        session.serverClose();
      },
      expected: ['reset', 'RELP_SERVERCLOSE'], acks: 1,
    },
    {
      what: 'a bad frame',
      script: (session, frame) => session.socket.write(frame.command === 'open' ? `1 rsp 3 200\n` : 'x rsp 0\n'),
      expected: ['other', 'RELP_BAD_FRAME'], acks: 0,
    },
    {
      what: 'the connection closed without serverclose',
      script: (session, frame) => (frame.command === 'open' ? session.answer(frame.txnr, OPEN_ACCEPTED) : session.socket.end()),
      expected: ['reset', 'PEER_CLOSED'], acks: 0,
    },
    {
      what: 'an answer to transaction 0 (hints only: nothing to answer)',
      script: (session, frame) => session.socket.write(frame.command === 'open' ? `1 rsp 3 200\n` : '0 rsp 3 200\n'),
      expected: ['other', 'RELP_UNEXPECTED'], acks: 0,
    },
    {
      what: 'a command a server does not send',
      script: (session, frame) => session.socket.write(frame.command === 'open' ? `1 rsp 3 200\n` : '9 syslog 3 abc\n'),
      expected: ['other', 'RELP_UNEXPECTED'], acks: 0,
    },
  ];
  for (const c of cases) {
    const { transport } = await scripted(t, c.script);
    const agent = recorder();
    const conn = transport.open('127.0.0.1', agent.listener);
    t.after(() => conn.destroy());
    conn.send(messages(2));
    await waitFor(c.what, () => agent.failures.length > 0, Infinity);
    assert.deepEqual(agent.failures, [[...c.expected, true]], c.what);
    assert.equal(agent.acks.length, c.acks, c.what);
    assert.equal(conn.unacknowledged, 0, `${c.what}: a failed session waits for nothing`);
    conn.send(messages(1));
    assert.equal(conn.unacknowledged, 0, `${c.what}: a failed session takes nothing more`);
  }
});
