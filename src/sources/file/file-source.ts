// Standalone mode's source: route documents from a YAML file or folder, watched for changes. A change is
// loaded and validated whole; an invalid file keeps the previous objects serving and says why in the log.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { SpecValidator } from '../../api/validate.ts';
import { emptyInput, type BuildInput } from '../../build/input.ts';
import { formatProblem, type ConfigProblem } from '../../errors.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Source } from '../source.ts';
import { loadRoutes } from './load-routes.ts';

export interface FileSourceOptions {
  readonly path: string;
  readonly validate: SpecValidator;
  readonly log: Logger;
  /** Each rejected reload, for tests and metrics. */
  readonly onInvalid?: (problems: readonly ConfigProblem[]) => void;
}

export class FileSource implements Source {
  readonly #o: FileSourceOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<() => void>();
  #input: BuildInput = emptyInput;
  #synced = false;
  #watcher: FSWatcher | undefined;
  #loading: Promise<void> | undefined;
  #again = false;

  constructor(o: FileSourceOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'file-source', path: o.path });
  }

  /** Loads once; a first load that fails is an error (the process should not start on a bad file). */
  async start(): Promise<void> {
    const path = resolve(this.#o.path);
    const r = await loadRoutes([path], this.#o.validate);
    if (r.problems.length > 0) throw Object.assign(new Error('invalid configuration'), { problems: r.problems });
    this.#input = { ...emptyInput, routes: r.routes };
    this.#synced = true;
    const isDir = (await stat(path)).isDirectory();
    // Watch the folder, not the file: editors and `kubectl`-style writers replace files by rename.
    const dir = isDir ? path : dirname(path);
    const name = isDir ? undefined : basename(path);
    this.#watcher = watch(dir, (_event, file) => {
      if (name === undefined || file === null || file === name) this.#reload();
    });
    this.#watcher.on('error', (err) => this.#log.error({ err }, 'watch failed'));
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#loading;
  }

  synced(): boolean {
    return this.#synced;
  }

  current(): BuildInput {
    return this.#input;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reloads now (also what the watcher calls); resolves when the load (and any queued one) is done. */
  reload(): Promise<void> {
    this.#reload();
    return this.#loading ?? Promise.resolve();
  }

  #reload(): void {
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#loading = this.#load().finally(() => {
      this.#loading = undefined;
      if (this.#again) {
        this.#again = false;
        this.#reload();
      }
    });
  }

  async #load(): Promise<void> {
    const r = await loadRoutes([resolve(this.#o.path)], this.#o.validate);
    if (r.problems.length > 0) {
      this.#log.warn({ problems: r.problems.map(formatProblem) }, 'configuration rejected; the previous routes keep serving');
      this.#o.onInvalid?.(r.problems);
      return;
    }
    this.#input = { ...emptyInput, routes: r.routes };
    for (const l of this.#listeners) l();
  }
}
