import { randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A command's state as Ironic reads it. */
export type CommandStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/**
 * A failed command's error, in the shape ironic-python-agent serialises its errors: Ironic shows
 * `details` (else `message`) in the node's last_error, and treats type "TypeError" as the agent's bug.
 */
export interface CommandError {
  type: string;
  code: number;
  message: string;
  details: string;
}

/** One command as GET /v1/commands lists it and POST /v1/commands answers it. */
export interface CommandResult {
  id: string;
  /** The command without its extension: "execute_deploy_step" for deploy.execute_deploy_step. */
  command_name: string;
  command_status: CommandStatus;
  command_error: CommandError | null;
  command_result: unknown;
}

/** A command's implementation: its params in, its result out (a string becomes {result: text}). */
export type CommandHandler = (params: Record<string, unknown>, ctx: { id: string }) => Promise<unknown>;

export interface CommandSpec {
  handler: CommandHandler;
  /**
   * Answer only when done, whatever ?wait says (ironic-python-agent's synchronous commands: the
   * step lists, partition UUIDs, sync, log collection; Ironic reads their result from the answer).
   */
  sync?: boolean;
  /** Runs once the answer has gone out and the command succeeded (power off, reboot). */
  afterAnswer?: () => void;
}

/** Extension.command → its implementation. */
export type CommandTable = Record<string, CommandSpec>;

/** A command failed with a type and HTTP code of its own (otherwise CommandExecutionError, 500). */
export class CommandFailure extends Error {
  constructor(
    readonly type: string,
    readonly code: number,
    readonly summary: string,
    details: string,
  ) {
    super(details);
  }
}

/** An HTTP error answer in ironic-python-agent's shape: Ironic reads `faultstring`. */
class HttpFault extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function commandError(err: unknown): CommandError {
  if (err instanceof CommandFailure)
    return { type: err.type, code: err.code, message: err.summary, details: err.message };
  const text = err instanceof Error ? err.message : String(err);
  return { type: 'CommandExecutionError', code: 500, message: 'Command execution failed', details: text };
}

interface Entry {
  result: CommandResult;
  done: Promise<void>;
}

/** The largest command body taken: a config drive rides in execute_deploy_step, 64 MiB at most. */
const BODY_MAX = 128 * 1024 * 1024;

/**
 * The agent's HTTP API, as Ironic's conductor calls it (ironic-python-agent's API, version v1):
 *
 * - GET  /v1/status               → {started_at, version}
 * - POST /v1/commands/?wait=&agent_token=  {name: "ext.command", params: {…}} → the command's result
 * - GET  /v1/commands/            → {commands: [results, oldest first]}
 * - GET  /v1/commands/{id}?wait=  → one result
 *
 * Only POST carries the agent token (Ironic sends none with its GETs); a missing or wrong one is
 * refused with 401. A command while the previous one still runs is refused with 409 "Agent is busy".
 */
export class AgentApi {
  private readonly commands = new Map<string, Entry>();
  private server?: http.Server;
  private readonly startedAt = Date.now() / 1000;

  constructor(
    private readonly opts: {
      commands: CommandTable;
      /** The token Ironic handed out at lookup; undefined refuses every command (none looked up yet). */
      token: () => string | undefined;
      version: string;
      /** Called when a command ends (the agent heartbeats at once, so Ironic sees it). */
      onCommandDone?: (result: CommandResult) => void;
      log?: (text: string) => void;
    },
  ) {}

  /** The results so far, oldest first. */
  results(): CommandResult[] {
    return [...this.commands.values()].map((e) => e.result);
  }

  /** Starts a command and records it; resolves with the entry once it is running (or already failed). */
  execute(name: string, params: Record<string, unknown>): Entry & { spec?: CommandSpec } {
    const dot = name.indexOf('.');
    const short = dot >= 0 ? name.slice(dot + 1) : name;
    const last = [...this.commands.values()].at(-1);
    if (last && last.result.command_status === 'RUNNING')
      throw new HttpFault(409, `Agent is busy: executing command ${last.result.command_name}`);
    const spec = Object.hasOwn(this.opts.commands, name) ? this.opts.commands[name] : undefined;
    const result: CommandResult = {
      id: randomUUID(),
      command_name: short,
      command_status: 'RUNNING',
      command_error: null,
      command_result: null,
    };
    const finish = (status: CommandStatus, value: unknown, error: CommandError | null) => {
      result.command_status = status;
      result.command_result =
        status === 'SUCCEEDED' ? (typeof value === 'string' ? { result: value } : (value ?? null)) : null;
      result.command_error = error;
      this.opts.log?.(`command ${name} ${status.toLowerCase()}${error ? `: ${error.details}` : ''}`);
      this.opts.onCommandDone?.(result);
    };
    let done: Promise<void>;
    if (!spec) {
      const known = Object.keys(this.opts.commands).sort().join(', ');
      finish('FAILED', null, {
        type: 'InvalidCommandError',
        code: 400,
        message: 'Invalid command',
        details: `Unknown command: ${name}; bareon's agent runs ${known}`,
      });
      done = Promise.resolve();
    } else {
      this.opts.log?.(`command ${name} started`);
      done = Promise.resolve()
        .then(() => spec.handler(params, { id: result.id }))
        .then(
          (value) => finish('SUCCEEDED', value, null),
          (err) => finish('FAILED', null, commandError(err)),
        );
    }
    const entry = { result, done };
    this.commands.set(result.id, entry);
    return { ...entry, spec };
  }

  private checkToken(given: string | null): void {
    const want = this.opts.token();
    const ok =
      want !== undefined &&
      given !== null &&
      Buffer.byteLength(given) === Buffer.byteLength(want) &&
      timingSafeEqual(Buffer.from(given), Buffer.from(want));
    if (!ok)
      throw new HttpFault(
        401,
        given === null
          ? 'Token invalid: the command carries no agent token; Ironic hands one out at lookup and sends it with every command'
          : want === undefined
            ? 'Token invalid: this agent has not looked its node up yet, so it holds no token to check against'
            : 'Token invalid: the command carries a token other than the one Ironic handed this agent at lookup',
      );
  }

  private async readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > BODY_MAX) throw new HttpFault(413, `Request body larger than ${BODY_MAX / 2 ** 20} MiB`);
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async route(req: http.IncomingMessage): Promise<{ status: number; body: unknown; after?: () => void }> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const wait = (url.searchParams.get('wait') ?? '').toLowerCase() === 'true';
    if (req.method === 'GET' && p === '/')
      return {
        status: 200,
        body: {
          name: "bareon's deploy agent (Ironic's agent API)",
          default_version: { id: 'v1' },
          versions: [{ id: 'v1' }],
        },
      };
    if (req.method === 'GET' && p === '/v1/status')
      return { status: 200, body: { started_at: this.startedAt, version: this.opts.version } };
    if (p === '/v1/commands') {
      if (req.method === 'GET') return { status: 200, body: { commands: this.results() } };
      if (req.method === 'POST') {
        const text = await this.readBody(req);
        let body: { name?: unknown; params?: unknown };
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpFault(400, 'Missing or invalid name or params: the body is not JSON');
        }
        if (
          typeof body !== 'object' ||
          body === null ||
          typeof body.name !== 'string' ||
          typeof body.params !== 'object' ||
          body.params === null ||
          Array.isArray(body.params)
        )
          throw new HttpFault(
            400,
            'Missing or invalid name or params: expected {"name": "ext.command", "params": {…}}',
          );
        this.checkToken(url.searchParams.get('agent_token'));
        const entry = this.execute(body.name, body.params as Record<string, unknown>);
        if (wait || entry.spec?.sync) await entry.done;
        const after = entry.spec?.afterAnswer;
        // power off or reboot once the answer is out and the command has succeeded
        return {
          status: 200,
          body: entry.result,
          after: after && (() => void entry.done.then(() => entry.result.command_status === 'SUCCEEDED' && after())),
        };
      }
      throw new HttpFault(405, `Method ${req.method} is not allowed on ${p}`);
    }
    const m = /^\/v1\/commands\/([^/]+)$/.exec(p);
    if (m && req.method === 'GET') {
      const entry = this.commands.get(decodeURIComponent(m[1]));
      if (!entry) throw new HttpFault(404, `Requested object not found: Command with id ${m[1]} not found.`);
      if (wait) await entry.done;
      return { status: 200, body: entry.result };
    }
    throw new HttpFault(404, `Not found: ${req.method} ${p}`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.route(req).then(
      ({ status, body, after }) => {
        const data = JSON.stringify(body);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
        res.end(data, () => after?.());
      },
      (err: unknown) => {
        const status = err instanceof HttpFault ? err.status : 500;
        const data = JSON.stringify({
          faultcode: status < 500 ? 'Client' : 'Server',
          faultstring: err instanceof Error ? err.message : String(err),
        });
        if (!res.headersSent)
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
        res.end(data);
      },
    );
  }

  /** Listens; port 0 takes a free one. Resolves with the address bound. */
  listen(port: number, host: string): Promise<AddressInfo> {
    const server = http.createServer((req, res) => this.handle(req, res));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and drops open connections. */
  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
