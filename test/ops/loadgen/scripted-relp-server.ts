/**
 * A RELP server for the load generator's tests whose answers each test
 * scripts: it reads the client's frames with the node's own parser (so the
 * client's framing is checked by an independent reader) and keeps them per
 * session, on a loopback port chosen by the kernel.
 */
import net from 'node:net';
import { formatFrame, RelpCommand, RelpFrameParser } from '../../../src/sources/relp/framing.js';

export const OPEN_ACCEPTED = '200 OK\nrelp_version=0\nrelp_software=scripted-test-server\ncommands=syslog';

export interface ReceivedFrame {
  txnr: number;
  command: string;
  data: string;
}

const COMMAND_NAMES: Record<number, string> = {
  [RelpCommand.Syslog]: 'syslog', [RelpCommand.Open]: 'open', [RelpCommand.Close]: 'close',
  [RelpCommand.Rsp]: 'rsp', [RelpCommand.ServerClose]: 'serverclose',
};

export class ScriptedRelpSession {
  readonly frames: ReceivedFrame[] = [];
  /** The client ended its side of the connection. */
  ended = false;
  /** A frame the node's parser refused, if any. */
  frameError: string | null = null;
  /** The most `syslog` transactions unanswered at once, as each arrived. */
  maxUnanswered = 0;
  private readonly answered = new Set<number>();

  constructor(readonly socket: net.Socket) {}

  syslog(): ReceivedFrame[] {
    return this.frames.filter((f) => f.command === 'syslog');
  }

  /** `syslog` transactions not answered yet, oldest first. */
  unanswered(): ReceivedFrame[] {
    return this.syslog().filter((f) => !this.answered.has(f.txnr));
  }

  answer(txnr: number, data = '200 OK'): void {
    this.answered.add(txnr);
    this.socket.write(formatFrame(txnr, 'rsp', data));
  }

  answerAll(data = '200 OK'): void {
    for (const frame of this.unanswered()) this.answer(frame.txnr, data);
  }

  serverClose(): void {
    this.socket.write('0 serverclose 0\n');
  }

  noteArrival(frame: ReceivedFrame): void {
    this.frames.push(frame);
    if (frame.command === 'syslog') this.maxUnanswered = Math.max(this.maxUnanswered, this.unanswered().length);
  }
}

/** Decides what the server does with each frame a client sends. */
export type Script = (session: ScriptedRelpSession, frame: ReceivedFrame) => void;

/** Accepts `open` and `close`, and answers every `syslog` with `syslogAnswer` (null: leaves it unanswered). */
export function answering(syslogAnswer: string | null = '200 OK'): Script {
  return (session, frame) => {
    if (frame.command === 'open') session.answer(frame.txnr, OPEN_ACCEPTED);
    else if (frame.command === 'close') session.answer(frame.txnr);
    else if (frame.command === 'syslog' && syslogAnswer !== null) session.answer(frame.txnr, syslogAnswer);
  };
}

export class ScriptedRelpServer {
  readonly sessions: ScriptedRelpSession[] = [];

  private constructor(private readonly server: net.Server, public script: Script) {}

  static listen(script: Script): Promise<ScriptedRelpServer> {
    const server = net.createServer();
    const scripted = new ScriptedRelpServer(server, script);
    server.on('connection', (socket) => scripted.accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(scripted));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    for (const session of this.sessions) session.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const session = new ScriptedRelpSession(socket);
    this.sessions.push(session);
    const parser = new RelpFrameParser(1024 * 1024, (txnr, command, buf, start, end) => {
      const frame = { txnr, command: COMMAND_NAMES[command] ?? parser.otherCommand, data: buf.toString('utf8', start, end) };
      session.noteArrival(frame);
      this.script(session, frame);
    });
    socket.on('data', (chunk: Buffer) => {
      if (!parser.push(chunk)) {
        session.frameError = parser.error;
        socket.destroy();
      }
    });
    socket.on('end', () => {
      session.ended = true;
      socket.end();
    });
    socket.on('error', () => undefined);
  }
}
