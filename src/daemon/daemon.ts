/**
 * The live daemon, `contid run`: the composition root that wires a source,
 * the assembler, the labeller, the host log (host-log.ts), this start's
 * markers (marker-channel.ts) and checkpoints (checkpoints.ts), installs the
 * audit rules, and implements {@link DaemonApi} for the control server and
 * `contid status`.
 *
 * Start: choose the source (auto: multicast when a live audit daemon is
 * registered, else become it), install rules and settings, append this
 * start's secret to the keyring, seed the process table from /proc, open the
 * host log, then send the `op=start` marker. Stop (graceful): send `op=stop`
 * and wait for it to come back, remove the rules, stop reading (which
 * unregisters if the kernel still names us), drain the assembler, fsync the
 * host log, restore `enabled` and the backlog limit.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { ContidError } from '../errors.js';
import { EventAssembler } from '../assemble/assembler.js';
import type { AuditEvent } from '../assemble/event.js';
import { SyscallError } from '../kernel/libc.js';
import { AuditNetlink, type AuditStatus } from '../kernel/netlink.js';
import { ProcConnector, type ProcExit } from '../kernel/proc-connector.js';
import { MARKER_TYPE, SEED_ENTRIES_PER_MARKER, type MarkerCaller } from '../marker/format.js';
import type { KeyringEntry } from '../marker/keyring.js';
import type { Labeller, LabelledEvent } from '../policy/labeller.js';
import { LabellingStage } from '../pipeline/labelling.js';
import { ContainerSinks } from '../route/container-sinks.js';
import { containerChanges } from '../route/router.js';
import type { SinkSpec } from '../route/sink-spec.js';
import { chainToken } from '../policy/contid.js';
import { CgroupAdoption, hostCgroupRefs, readCgroupNow, readProcCgroup } from './adoption.js';
import {
  DaemonError,
  type DaemonApi,
  type DaemonStatus,
  type OperationRequest,
  type OperationResult,
  type ProcessLabel,
} from './api.js';
import { hostLogPath, keyringPath, type DaemonConfig } from './config.js';
import { appendKeyring, compactTime, ensurePrivateDirectory } from './files.js';
import { HostLog, HostLogWriter } from './host-log.js';
import { isAlive, KernelSetup } from './kernel-setup.js';
import type { Logger } from './logger.js';
import { readProcSnapshot } from './proc-seed.js';
import { Descriptions } from './descriptions.js';
import { Monitor } from './monitor.js';
import { Operations } from './operations.js';
import { MarkerChannel } from './marker-channel.js';
import { Witness } from './witness.js';
import { Checkpoints } from './checkpoints.js';
import { NetlinkSource, PluginSource, type LiveMode, type RecordSource } from './sources.js';
import type { StoreWriter } from '../store/writer.js';

export interface DaemonOptions {
  readonly config: DaemonConfig;
  readonly log: Logger;
  /** The plugin stream (plugin mode). Default: process.stdin. */
  readonly input?: Readable;
  /** The daemon's own process (its markers are kernel-stamped with its pid). Default: this process. */
  readonly self?: DaemonSelf;
}

/** The daemon's process: what its own markers and records are recognised by. */
export interface DaemonSelf {
  readonly pid: number;
  /** Its executable, as its adoption marker's caller names it. */
  readonly exe: string;
}

/**
 * How long after an exit the daemon looks at waiting exits when no batch
 * of records did meanwhile (each batch looks at them), with a source that
 * hands over no batch when idle (auditd's plugin stream): the witness's
 * idle margin, before which an exit on a quiet stream cannot be judged.
 */
const EXIT_CHECK_MS = 250;

/**
 * How early periodic work (the status check, the seal) may run from a batch
 * rather than from its own timer: batches come at least once a second, so
 * with this slack the timers almost never wake the daemon by themselves.
 */
const CHORE_SLACK_MS = 1000;

/** How long the stop marker may take to come back before the daemon stops anyway. */
const STOP_MARKER_WAIT_MS = 2000;

/** The running daemon. */
export class Daemon implements DaemonApi {
  readonly mode: LiveMode;
  readonly startId: string;
  /** Resolves when the daemon has stopped, with its exit code (0 clean, 1 with problems). */
  readonly finished: Promise<number>;
  /** This daemon's process (DaemonOptions.self). */
  readonly #self: DaemonSelf;
  readonly #config: DaemonConfig;
  readonly #log: Logger;
  readonly #control: AuditNetlink;
  readonly #source: RecordSource;
  readonly #kernel: KernelSetup | null;
  /** Labels events, per node (src/pipeline/labelling.ts): the same stage as `contid replay`'s. */
  readonly #stage: LabellingStage;
  /**
   * The node of this host's records: null on netlink, auditd's name for it
   * (`name_format`) in plugin mode, learnt from the echo of the start marker.
   */
  #localNode: string | null = null;
  /** The events the stage hands over, one array reused for every event. */
  readonly #ready: LabelledEvent[] = [];
  /** Adoption through containers' cgroups, when enabled. */
  readonly #adoption: CgroupAdoption | null;
  /** Exits from the proc connector, when enabled and available. */
  #exits: ProcConnector | null = null;
  /** Writes what /proc and the proc connector show into the stream (src/daemon/witness.ts). */
  readonly #witness: Witness;
  #exitTimer: NodeJS.Timeout | undefined;
  #reconcileTimer: NodeJS.Timeout | undefined;
  #lastBatchAt = 0;
  /** When the last batch holding records came (ms). */
  #lastRecordsAt = 0;
  /** The checkpoint lifecycle (src/daemon/checkpoints.ts). */
  readonly #checkpoints: Checkpoints;
  /** The highest kernel serial read (the stream position a checkpoint names). */
  #newestSerial = 0;
  /** The first kernel serial this start read. */
  #firstSerial = 0;
  readonly #assembler: EventAssembler;
  /** Formats and writes the host log, coalescing writes (src/daemon/host-log.ts). */
  readonly #hostWriter: HostLogWriter | null;
  readonly #hostLog: HostLog | null;
  /** Each container's copies of its events (src/route/). */
  readonly #containerSinks: ContainerSinks;
  /** The event store's sink (docs/store.md), when configured: it never makes the host log wait. */
  readonly #store: StoreWriter | null;
  /** One event at a time into the store, through one reused array. */
  readonly #storeOne: LabelledEvent[] = [];
  readonly #startedAt = new Date();
  /** Set, grant and adopt requests until their markers are applied (src/daemon/operations.ts). */
  readonly #operations: Operations;
  /** What orchestrators said about live containers (src/daemon/descriptions.ts). */
  readonly #descriptions: Descriptions;
  /** This start's markers, their echoes and seals (src/daemon/marker-channel.ts). */
  readonly #markers: MarkerChannel;
  #stopping: Promise<number> | undefined;
  /** The stop marker is sent: the witness writes no more markers. */
  #stopMarkerSent = false;
  #timer: NodeJS.Timeout | undefined;
  /** When the status was last checked (#tick). */
  #tickedAt = 0;
  #newestMs = 0;
  /** Rate and loss monitoring (src/daemon/monitor.ts). */
  readonly #monitor: Monitor;
  #runError: Error | null = null;
  readonly #running: Promise<void>;
  #startConfirmed = false;
  /** The source ended or failed: nothing more will be read. */
  #inputEnded = false;

  private constructor(parts: {
    self: DaemonSelf;
    config: DaemonConfig;
    log: Logger;
    control: AuditNetlink;
    source: RecordSource;
    kernel: KernelSetup | null;
    keyring: KeyringEntry;
    hostLog: HostLog | null;
    store: StoreWriter | null;
  }) {
    this.#self = parts.self;
    this.#config = parts.config;
    this.#log = parts.log;
    this.#control = parts.control;
    this.#source = parts.source;
    this.mode = parts.source.mode;
    this.#kernel = parts.kernel;
    this.startId = parts.keyring.startId;
    this.#markers = new MarkerChannel({
      keyring: parts.keyring,
      selfPid: parts.self.pid,
      send: (type, text) => {
        parts.control.sendUserMessage(type, text);
      },
      expectMarker: () => {
        parts.source.expectMarker?.();
      },
      sealIntervalMs: parts.config.sealIntervalMs,
      losses: () =>
        this.#source.stats().enobufs + this.#assembler.stats().lostEstimate + this.#monitor.kernelLost,
      onEcho: (node) => {
        // Our own marker: its node is this host's (auditd's name_format in plugin mode).
        this.#localNode = node;
        this.#containerSinks.router.node = node;
      },
      log: parts.log,
    });
    this.#checkpoints = new Checkpoints({
      stateDir: parts.config.stateDir,
      startId: parts.keyring.startId,
      selfPid: parts.self.pid,
      labeller: () => this.#labeller,
      position: () => ({ node: this.#localNode, serial: this.#newestSerial, timeMs: this.#newestMs }),
      started: () => this.#startConfirmed,
      log: parts.log,
    });
    this.#hostLog = parts.hostLog;
    this.#store = parts.store;
    this.#hostWriter =
      parts.hostLog === null ? null : new HostLogWriter(parts.hostLog, { format: parts.config.format });
    this.#containerSinks = new ContainerSinks({
      defaults: parts.config.containerSinks,
      onError: (container, error) => {
        this.#log('warning', `Container ${container} sink: ${error.message}`);
      },
    });
    this.#stage = new LabellingStage({
      labeller: {
        keyring: new Map([[parts.keyring.startId, parts.keyring]]),
        maxProcesses: parts.config.maxProcesses,
        questions: true,
      },
      // Markers missing or moved show in the host log; verifying its own
      // seals would only hash every record twice.
      evidence: { seals: false },
      onFailure: (error, event) => {
        // (The first ten, then one in a thousand: a defect could repeat for every event.)
        const n = this.#stage.stats().failed;
        if (n <= 10 || n % 1000 === 0) {
          this.#log(
            'error',
            `Cannot label event ${event.time}:${event.serial} (${n} so far): ${error.message}; it is written with contid=unknown`,
          );
        }
      },
    });
    this.#witness = new Witness({
      labeller: () => this.#labeller,
      send: (body) => {
        // Nothing follows the stop marker: a marker after it would be a stale start's.
        if (this.#stopMarkerSent) return;
        this.#markers.send(body);
      },
      streamTimeMs: () => this.#newestMs,
      // Nothing in flight: no record waiting, none handled in the last 50 ms.
      // A batch without records (the reader's idle read) does not count: the
      // exits are looked at from those batches, on a quiet host.
      idle: () => this.#source.queued() === 0 && Date.now() - this.#lastRecordsAt > 50,
      log: parts.log,
    });
    this.#descriptions = new Descriptions((chain) => this.#labeller.containerByChain(chain) !== undefined);
    this.#operations = new Operations({
      startId: this.startId,
      timeoutMs: parts.config.submitTimeoutMs,
      log: parts.log,
      descriptions: this.#descriptions,
      nextSeq: () => this.#markers.nextSeq,
      sendMarker: (body) => {
        this.#markers.send(body);
      },
      place: (pid) => {
        this.#witness.place(pid);
      },
    });
    this.#monitor = new Monitor({
      log: parts.log,
      readStatus: () => this.#control.getStatus(),
      reconcile: () => {
        this.#witness.reconcile(true);
      },
    });
    this.#adoption = parts.config.adopt ? this.#startAdoption() : null;
    this.#assembler = new EventAssembler({
      timeoutMs: parts.config.eventTimeoutMs,
      maxInFlight: parts.config.maxInFlight,
      onEvent: (event) => {
        this.#onEvent(event);
      },
    });
    this.#running = this.#run();
    this.finished = this.#running.then(
      () => this.stop('the input ended'),
      (error: unknown) => {
        this.#inputEnded = true;
        this.#runError = error instanceof Error ? error : new Error(String(error));
        this.#log('error', `Reading stopped: ${this.#runError.message}`);
        return this.stop('a read error');
      },
    );
  }

  /**
   * Starts the daemon. On failure, everything already changed in the
   * kernel is put back before the error is thrown.
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const { config, log } = options;
    const self = options.self ?? { pid: process.pid, exe: process.execPath };
    const control = new AuditNetlink();
    let source: RecordSource | undefined;
    let kernel: KernelSetup | null = null;
    let store: StoreWriter | null = null;
    try {
      // Unsafe directories and keyrings refuse the start before anything in
      // the kernel changes. The start's secret is on disk before its start
      // marker is sent; a start that fails later leaves an unused line.
      ensurePrivateDirectory(config.stateDir, 'state directory');
      if (config.hostLog !== null && config.hostLog !== '') {
        ensurePrivateDirectory(dirname(config.hostLog), 'host log directory');
      }
      const entry: KeyringEntry = {
        startId: `${compactTime(new Date())}-${self.pid}-${randomBytes(2).toString('hex')}`,
        daemonPid: self.pid,
        secret: randomBytes(32),
      };
      appendKeyring(keyringPath(config), entry);
      // The store opens before anything in the kernel changes: a store that
      // cannot be opened refuses the start, with its reason.
      if (config.store !== '') store = await openStore(config, log);
      const status = control.getStatus();
      source = await openSource(config, status, options.input ?? process.stdin, log, self.pid);
      const manageRules = config.rules === 'yes' || (config.rules === 'auto' && source.mode !== 'plugin');
      // As the audit daemon, contid enables audit even without its rules,
      // as auditd does: a disabled kernel sends nothing.
      if (manageRules || source.mode === 'unicast') {
        kernel = new KernelSetup(control, {
          selfPid: self.pid,
          rules: manageRules,
          backlogLimit: config.backlogLimit,
          statePath: `${config.stateDir.replace(/\/+$/, '')}/kernel-state.json`,
          log,
        });
        kernel.apply();
        if (manageRules) log('info', `Installed ${kernel.rules.length} audit rules (-k contid)`);
      }
      const logPath = hostLogPath(config, source.mode);
      const hostLog = logPath === null ? null : HostLog.open(logPath, { log });
      const daemon = new Daemon({
        self,
        config,
        log,
        control,
        source,
        kernel,
        keyring: entry,
        hostLog,
        store,
      });
      // Seeding (in #begin) comes before the first await: the run loop is already reading.
      daemon.#begin(status);
      if (config.procConnector) await daemon.#openProcConnector();
      daemon.#announce();
      return daemon;
    } catch (error) {
      const problems = kernel?.restore() ?? [];
      for (const p of problems) log('error', `Cannot restore audit state: ${p}`);
      await source?.close().catch(() => undefined);
      await store?.close().catch(() => undefined);
      control.close();
      throw error;
    }
  }

  async #openProcConnector(): Promise<void> {
    try {
      // With a netlink source, which hands over a batch at least once a
      // second, the connector is read after each batch: exits ride the
      // records' wake-ups and the idle reads, and never wake contid alone.
      const source = this.#source;
      const exits = await ProcConnector.open({
        threads: true,
        wait: source.idleTurnMs === undefined ? 'own' : 'owner',
        onExit: (exit) => {
          this.#onExit(exit);
        },
        onError: (error) => {
          this.#log('warning', `Proc connector: ${error.message}`);
        },
      });
      if (this.#stopping !== undefined) {
        // The input ended while the connector opened.
        await exits.close();
        return;
      }
      this.#exits = exits;
      this.#log('info', 'Watching exits with the proc connector');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#log(
        'warning',
        `Cannot open the proc connector (${message}): labelled processes killed by a signal ` +
          'will end only when their pid is reused',
      );
    }
  }

  /**
   * A task exited (the proc connector reports threads too). The witness
   * looks at it once the stream has passed it: a process the table still
   * holds alive then left without an exit_group record.
   */
  #onExit(exit: ProcExit): void {
    if (this.#stopping !== undefined) return;
    this.#witness.onExit(exit);
    // A source that hands over batches when idle brings the next look at exits itself.
    if (this.#source.idleTurnMs !== undefined) return;
    this.#exitTimer ??= setTimeout(() => {
      this.#checkExits();
    }, EXIT_CHECK_MS).unref();
  }

  /**
   * The exit timer: it fires only when no batch of records has looked at
   * the waiting exits for EXIT_CHECK_MS, so a busy stream never wakes the
   * daemon for it.
   */
  #checkExits(): void {
    this.#exitTimer = undefined;
    this.#witness.check();
    if (this.#witness.busy && this.#stopping === undefined) {
      this.#exitTimer = setTimeout(() => {
        this.#checkExits();
      }, EXIT_CHECK_MS).unref();
    }
  }

  #begin(status: AuditStatus): void {
    const log = this.#log;
    this.#monitor.begin(status);
    this.#tickedAt = Date.now();
    this.#timer = setInterval(() => {
      this.#tick();
    }, this.#config.statusIntervalMs);
    this.#timer.unref();
    const checkpoint =
      this.#config.seedProc && this.#config.checkpointIntervalMs > 0 ? this.#checkpoints.load() : null;
    // Events read before the start marker wait for the restore too.
    if (checkpoint !== null) this.#labeller.expectRestore();
    const confirmed = this.#markers.awaitEcho(
      this.#markers.send({
        op: 'start',
        daemonPid: this.#self.pid,
        ...(checkpoint === null ? {} : { restore: true }),
      }),
    );
    if (this.#config.seedProc) {
      // The snapshot goes into the stream (seed markers), not straight into
      // the table: a replay of the log then starts from the same table, and
      // records that came before the snapshot are judged without it, live too.
      const procs = readProcSnapshot();
      for (let i = 0; i < procs.length; i += SEED_ENTRIES_PER_MARKER) {
        const part = procs.slice(i, i + SEED_ENTRIES_PER_MARKER).map((p) => ({
          pid: p.pid,
          ppid: p.ppid,
          start: p.startTime ?? 0,
          pidns: p.pidns ?? null,
        }));
        this.#markers.send({ op: 'seed', procs: part });
      }
      log('info', `Seeded the process table with ${procs.length} processes from /proc (seed markers)`);
      if (checkpoint !== null) {
        this.#checkpoints.restore(checkpoint, procs, (body) => {
          this.#markers.send(body);
        });
      }
    }
    if (this.#config.checkpointIntervalMs > 0)
      this.#checkpoints.startTimer(this.#config.checkpointIntervalMs);
    this.#markers.startSealing();
    if (this.#config.reconcileIntervalMs > 0) {
      this.#reconcileTimer = setInterval(() => {
        this.#witness.reconcile(false);
      }, this.#config.reconcileIntervalMs);
      this.#reconcileTimer.unref();
    }
    const warn = setTimeout(() => {
      if (!this.#startConfirmed) {
        log(
          'warning',
          `The start marker did not come back within ${this.#config.submitTimeoutMs} ms ` +
            '(is audit enabled? are records reaching contid?); operations will time out',
        );
      }
    }, this.#config.submitTimeoutMs);
    warn.unref();
    void confirmed.then(() => {
      this.#startConfirmed = true;
      clearTimeout(warn);
    });
  }

  /** The last step of start: callers (and tests) take "Started:" as ready. */
  #announce(): void {
    const target =
      this.#hostLog === null ? 'no host log' : `host log ${this.#hostLog.path} (${this.#config.format})`;
    this.#log(
      'notice',
      `Started: pid ${this.#self.pid}, source ${this.mode}, start ${this.startId}, ${target}`,
    );
  }

  async #run(): Promise<void> {
    for (;;) {
      const batch = await this.#source.next();
      if (batch === null) break;
      this.#lastBatchAt = Date.now();
      if (batch.length > 0) this.#lastRecordsAt = this.#lastBatchAt;
      if (this.#firstSerial === 0 && batch.length > 0) {
        this.#firstSerial = batch[0]!.serial;
        this.#checkpoints.firstRead(this.#firstSerial);
      }
      const markers = this.#markers;
      const sealer = markers.sealer;
      for (const r of batch) {
        if (r.timeMs > this.#newestMs) this.#newestMs = r.timeMs;
        if (r.serial > this.#newestSerial) this.#newestSerial = r.serial;
        if (r.type === MARKER_TYPE) markers.noteOwn(r);
        if (r.node === markers.sealNode) sealer?.add(r);
        this.#assembler.push(r);
      }
      sealer?.note(this.#lastBatchAt);
      // The exits the kernel reported meanwhile, read in this same wake-up
      // (the connector's own timer fires only when no batch came for 250 ms).
      this.#exits?.poll();
      // What the batch raised: never-seen parents to look up, exits passed.
      this.#witness.answerQuestions();
      this.#witness.check();
      // Exits were just looked at: the timer need not wake the daemon before another check is due.
      if (this.#exitTimer !== undefined) {
        if (this.#witness.busy) this.#exitTimer.refresh();
        else {
          clearTimeout(this.#exitTimer);
          this.#exitTimer = undefined;
        }
      }
      // Periodic work due now runs in this wake-up rather than its own.
      this.#choresDue();
      // Batches of the same read that wait already go in the same host-log write.
      await this.#flush(false, this.#source.queued() > 0);
    }
    this.#inputEnded = true;
    this.#assembler.end();
    for (const ready of this.#stage.end()) {
      this.#writeHost(ready);
      if (ready.event.node === this.#localNode) this.#route(ready);
      if (this.#store !== null) this.#toStore(ready);
    }
    await this.#flush(true);
  }

  /** Formats an event for the host log. */
  #writeHost(le: LabelledEvent): void {
    this.#hostWriter?.write(le);
  }

  /**
   * Queues an event for the store. Never waits: past the writer's bound,
   * events are dropped there and counted (status `store.dropped`).
   */
  #toStore(le: LabelledEvent): void {
    this.#storeOne[0] = le;
    this.#store!.write(this.#storeOne);
    this.#storeOne.pop();
  }

  /**
   * Hands what was formatted to the sinks: the container sinks never wait,
   * the host log may (HostLogWriter.flush: its backpressure and coalesced
   * writes; `more`: batches of the same read wait). With `all`, writes
   * everything and waits until it is written and fsynced.
   */
  async #flush(all = false, more = false): Promise<void> {
    // Container sinks never wait: each write is queued or dropped and counted.
    this.#containerSinks.pump();
    if (this.#hostWriter !== null) await this.#hostWriter.flush(all, more);
  }

  #startAdoption(): CgroupAdoption {
    const read = (path: string): Promise<string> => readFile(path, 'utf8');
    const hostRefs = hostCgroupRefs(this.#self.pid);
    let auid = 4294967295;
    try {
      auid = Number(readFileSync('/proc/self/loginuid', 'utf8').trim());
    } catch {
      // No loginuid (kernel without audit syscall support): unset.
    }
    const self: MarkerCaller = {
      pid: this.#self.pid,
      uid: process.getuid?.() ?? 0,
      auid,
      exe: this.#self.exe,
      privileged: true,
    };
    return new CgroupAdoption({
      readCgroup: (pid) => readProcCgroup(pid, read),
      readCgroupNow,
      adopt: async (pid, chain) => {
        await this.submit({ op: 'adopt', pid, contid: chainToken(chain.split(',^')), caller: self });
      },
      isLive: (chain) => this.#labeller.containerByChain(chain) !== undefined,
      hostRefs,
      log: this.#log,
    });
  }

  #onEvent(event: AuditEvent): void {
    if (this.#markers.awaiting) {
      for (const r of event.records) if (r.type === MARKER_TYPE) this.#markers.checkEcho(r);
    }
    const ready = this.#stage.push(event, this.#ready);
    try {
      for (let i = 0; i < ready.length; i++) {
        const le = ready[i]!;
        this.#writeHost(le);
        if (le.event.node === this.#localNode) {
          this.#adoption?.onEvent(le);
          this.#route(le);
        }
        if (this.#store !== null) this.#toStore(le);
        // Operations answer at once: a marker's event is never provisional.
        for (const op of le.ops) {
          // An accepted operation is saved before it is answered: a crash
          // right after the answer must not lose the label.
          if (op.errno === null && op.op !== 'drop' && op.marker?.start === this.startId) {
            if (this.#config.checkpointIntervalMs > 0) this.#checkpoints.save();
          }
          this.#operations.answer(op);
        }
      }
    } finally {
      while (ready.length > 0) ready.pop();
    }
    this.#checkpoints.afterEvent();
  }

  /**
   * Copies the event to the containers that see it, then opens the sinks of
   * the containers it created and closes those of the ones it dropped (the
   * drop's own event is delivered first).
   */
  #route(le: LabelledEvent): void {
    const sinks = this.#containerSinks;
    sinks.deliver(le);
    if (le.ops.length === 0) return;
    const changes = containerChanges(le);
    for (const c of changes.created) {
      let specs: readonly SinkSpec[] | null = null;
      if (c.marker?.start === this.startId) specs = this.#operations.takeSinks(c.marker.seq);
      sinks.open(c.chain, { pid: c.pid, specs });
    }
    for (const chain of changes.dropped) sinks.drop(chain);
  }

  /** The labeller of this host's records. */
  get #labeller(): Labeller {
    return this.#stage.labeller(this.#localNode)!;
  }

  submit(request: OperationRequest, signal?: AbortSignal): Promise<OperationResult> {
    if (this.#stopping !== undefined) {
      return Promise.reject(
        new DaemonError('Cannot submit an operation: contid is stopping', 'ERR_SHUTTING_DOWN'),
      );
    }
    return this.#operations.submit(request, signal);
  }

  get(pid: number): ProcessLabel | null {
    const entry = this.#labeller.table.get(pid);
    if (entry === undefined || !entry.alive) return null;
    return { pid, contid: entry.label?.rendered ?? null };
  }

  status(): DaemonStatus {
    const a = this.#assembler.stats();
    const l = this.#labeller.stats();
    const source = this.#source.stats();
    const kernel = this.#monitor.kernel;
    return {
      pid: this.#self.pid,
      startedAt: this.#startedAt.toISOString(),
      source: this.mode,
      startId: this.startId,
      records: a.records,
      events: a.events,
      recordRate: this.#monitor.recordRate,
      lagMs: this.#newestMs === 0 ? 0 : Math.max(0, Date.now() - this.#newestMs),
      losses: {
        enobufs: source.enobufs,
        kernelLost: this.#monitor.kernelLost,
        serialGaps: a.lostEstimate,
      },
      processes: l.processes,
      containers: l.containers,
      forgeries: l.forgeries,
      described: this.#descriptions.live(),
      pendingOperations: this.#operations.pending,
      startMarkerConfirmed: this.#startConfirmed,
      rules: this.#kernel?.rules.length ?? 0,
      kernel:
        kernel === null
          ? null
          : {
              enabled: kernel.enabled,
              backlog: kernel.backlog,
              backlogLimit: kernel.backlogLimit,
              backlogWaitTimeActual: kernel.backlogWaitTimeActual,
              lost: kernel.lost,
            },
      sourceStats: source,
      assembler: a,
      labels: l,
      adoption: this.#adoption?.stats() ?? null,
      procConnector: this.#exits === null ? null : this.#exits.stats(),
      witness: this.#witness.stats(),
      checkpoint: this.#checkpoints.stats(),
      hold: this.#stage.stats().hold,
      evidence: this.#stage.stats().evidence,
      seals: this.#markers.stats(),
      nodes: this.#stage.nodes,
      hostLog: this.#hostLog?.stats() ?? null,
      containerSinks: this.#containerSinks.stats(),
      store: this.#store === null ? null : { path: this.#config.store, ...this.#store.stats() },
    };
  }

  /**
   * The status check and the seal, when due within CHORE_SLACK_MS (a
   * quarter of their interval at most), from a batch (the reader hands one
   * over at least once a second): their timers are pushed back a whole
   * interval and fire only when no batch came for that long.
   */
  #choresDue(): void {
    const interval = this.#config.statusIntervalMs;
    const slack = Math.min(CHORE_SLACK_MS, interval / 4);
    if (this.#timer !== undefined && Date.now() - this.#tickedAt >= interval - slack) {
      this.#timer.refresh();
      this.#tick();
    }
    this.#markers.sealIfDue(CHORE_SLACK_MS);
  }

  /** Polls the kernel status and reports new losses (src/daemon/monitor.ts). */
  #tick(): void {
    this.#tickedAt = Date.now();
    const a = this.#assembler.stats();
    const source = this.#source.stats();
    const exits = this.#exits?.stats();
    this.#monitor.tick(Date.now(), {
      records: a.records,
      enobufs: source.enobufs,
      serialGaps: a.lostEstimate,
      connectorEnobufs: exits?.enobufs ?? 0,
      storeDropped: this.#store?.stats().dropped ?? 0,
      foreign: source.foreign + (exits?.foreign ?? 0),
    });
  }

  /**
   * Reopens the host log (SIGHUP, after logrotate renamed it): events
   * formatted from now on go to a new file at the same path.
   */
  reopenLog(): Promise<void> {
    if (this.#hostLog === null) {
      this.#log('info', 'Reopen asked, but there is no host log');
      return Promise.resolve();
    }
    return this.#hostLog.reopen();
  }

  /** Stops gracefully (see the module comment). Idempotent; resolves with the exit code. */
  stop(reason: string): Promise<number> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<number> {
    this.#log('notice', `Stopping: ${reason}`);
    const problems: string[] = [];
    await this.#endStart(problems);
    this.#operations.close(
      new DaemonError('Cannot complete the operation: contid stopped first', 'ERR_SHUTTING_DOWN'),
    );
    await this.#stopReading(problems);
    await this.#closeOutputs();
    problems.push(...(this.#kernel?.restoreSettings() ?? []));
    clearInterval(this.#timer);
    clearInterval(this.#reconcileTimer);
    this.#checkpoints.stopTimer();
    clearTimeout(this.#exitTimer);
    this.#tick();
    this.#control.close();
    return this.#reportStop(problems);
  }

  /**
   * The first step of stop: seals what was read, sends the stop marker and
   * waits for it while reading, so that it lands in the host log before the end.
   */
  async #endStart(problems: string[]): Promise<void> {
    let seq: number | undefined;
    this.#markers.stopSealing();
    // What was read so far, before the stop marker ends the start.
    this.#markers.seal(true);
    try {
      seq = this.#markers.send({ op: 'stop' });
      this.#stopMarkerSent = true;
    } catch (error) {
      problems.push(`stop marker: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (seq !== undefined && !this.#inputEnded) {
      await withTimeout(this.#markers.awaitEcho(seq), STOP_MARKER_WAIT_MS).catch((error: unknown) => {
        this.#log(
          'warning',
          `The stop marker was not read back: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
    }
  }

  /**
   * Stops the inputs: the proc connector, the rules (no new records), the
   * source (which unregisters if the kernel still names us), then waits for
   * the run loop to drain what the source still holds, end the assembler
   * and write the rest.
   */
  async #stopReading(problems: string[]): Promise<void> {
    await this.#exits?.close().catch(() => undefined);
    problems.push(...(this.#kernel?.restoreRules() ?? []));
    try {
      await this.#source.close();
    } catch (error) {
      problems.push(`unregister: ${error instanceof Error ? error.message : String(error)}`);
    }
    await this.#running.catch(() => undefined);
  }

  /** Writes and closes the outputs: container sinks, the last checkpoint, the host log (fsynced), the store. */
  async #closeOutputs(): Promise<void> {
    await this.#flush(true);
    await this.#containerSinks.close();
    if (this.#config.checkpointIntervalMs > 0) this.#checkpoints.save();
    await this.#hostLog?.close();
    if (this.#store !== null) {
      await this.#store.close();
      const st = this.#store.stats();
      if (st.dropped + st.failed + st.rejected > 0) {
        this.#log(
          'warning',
          `Event store "${this.#config.store}": ${st.dropped} events dropped (queue full), ` +
            `${st.failed} lost (${st.lastError?.message ?? 'write failed'}), ${st.rejected} refused`,
        );
      }
    }
  }

  /** The last step of stop: logs its problems and what was read; returns the exit code. */
  #reportStop(problems: readonly string[]): number {
    const log = this.#log;
    for (const p of problems) log('error', `While stopping: ${p}`);
    const s = this.status();
    log(
      'notice',
      `Stopped: ${s.records} records, ${s.events} events, losses ${JSON.stringify(s.losses)}` +
        (this.#hostLog === null ? '' : `, host log ${JSON.stringify(this.#hostLog.stats())}`) +
        (this.#store === null
          ? ''
          : `, event store ${this.#config.store}: ${this.#store.stats().written} events`),
    );
    return problems.length === 0 && this.#runError === null ? 0 : 1;
  }
}

/**
 * Opens the event store's writer (its module, and SQLite, load only when a
 * store is configured). Its errors are logged as they come, with what was
 * lost; the daemon goes on.
 */
async function openStore(config: DaemonConfig, log: Logger): Promise<StoreWriter> {
  const { StoreWriter } = await import('../store/writer.js');
  const writer = await StoreWriter.open(config.store, {
    maxAgeMs: config.storeMaxAgeMs,
    maxBytes: config.storeMaxBytes,
    onError: (error) => {
      log('warning', `Event store: ${error.message}`);
    },
  });
  log('info', `Event store ${config.store}: ${writer.info.events} events stored before this start`);
  return writer;
}

async function openSource(
  config: DaemonConfig,
  status: AuditStatus,
  input: Readable,
  log: Logger,
  selfPid: number,
): Promise<RecordSource> {
  const buffer = config.receiveBufferBytes;
  const wait = config.batchWaitMs;
  switch (config.source) {
    case 'plugin':
      return new PluginSource(input);
    case 'unicast':
    case 'multicast':
      return NetlinkSource.open(config.source, buffer, wait);
    case 'auto': {
      const other = status.pid !== 0 && status.pid !== selfPid && isAlive(status.pid);
      if (other) {
        log('info', `Pid ${status.pid} is the audit daemon: reading the multicast copy beside it`);
        return NetlinkSource.open('multicast', buffer, wait);
      }
      try {
        return await NetlinkSource.open('unicast', buffer, wait);
      } catch (error) {
        if (!(error instanceof SyscallError && error.code === 'EEXIST')) throw error;
        log('info', 'Another audit daemon registered meanwhile: reading the multicast copy beside it');
        return NetlinkSource.open('multicast', buffer, wait);
      }
    }
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => {
        reject(new ContidError(`timed out after ${ms} ms`, 'ETIMEDOUT'));
      }, ms);
    }),
  ]).finally(() => {
    clearTimeout(timer);
  });
}
