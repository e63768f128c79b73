// Standalone mode's source: route documents from a YAML file or folder, watched for changes. A change is
// loaded and validated whole; an invalid file keeps the previous objects serving and says why in the log.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { SpecValidator } from '../../api/validate.ts';
import { emptyInput, type BuildInput } from '../../dag/input.ts';
import { formatProblem, type ConfigProblem } from '../../errors.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Source, SourceChange } from '../source.ts';
import { localRouteLoader, type RouteLoader } from './route-loader.ts';

export interface FileSourceOptions {
  readonly path: string;
  readonly validate: SpecValidator;
  readonly log: Logger;
  /** Each rejected reload, for tests and metrics. */
  readonly onInvalid?: (problems: readonly ConfigProblem[]) => void;
  /** Where the files are read and checked (default: here, and current() returns the objects). A loader that
   *  keeps the objects where the build runs leaves current() empty. */
  readonly loader?: RouteLoader;
}

export class FileSource implements Source {
  readonly #o: FileSourceOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<(change: SourceChange) => void>();
  #input: BuildInput = emptyInput;
  #synced = false;
  #watcher: FSWatcher | undefined;
  #loading: Promise<void> | undefined;
  #again = false;
  #baseDir = '.';
  readonly #fileWatchers = new Map<string, FSWatcher>();
  readonly #loader: RouteLoader;
  readonly #watchedNames = new Map<string, Set<string>>();

  constructor(o: FileSourceOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'file-source', path: o.path });
    this.#loader = o.loader ?? localRouteLoader(o.validate);
  }

  /** Loads once; a first load that fails is an error (the process should not start on a bad file). */
  async start(): Promise<void> {
    const path = resolve(this.#o.path);
    // A path that cannot be read is reported by the loader with the other problems.
    const isDir = await stat(path).then((st) => st.isDirectory(), () => false);
    this.#baseDir = isDir ? path : dirname(path);
    const r = await this.#loader.load(path, this.#baseDir);
    if (r.problems.length > 0) throw Object.assign(new Error('invalid configuration'), { problems: r.problems });
    this.#input = r.input ?? emptyInput;
    this.#watchFiles(r.paths);
    this.#synced = true;
    // Watch the folder, not the file: editors and `kubectl`-style writers replace files by rename.
    const dir = isDir ? path : dirname(path);
    const name = isDir ? undefined : basename(path);
    this.#watcher = watch(dir, (_event, file) => {
      if (name === undefined || file === null || file === name) this.#reload();
    });
    this.#watcher.on('error', (err) => this.#log.error({ err }, 'watch failed'));
  }

  /** Key material files named by the routes (certificates, keys, CA bundles), watched like the routes. */
  #watchFiles(paths: readonly string[]): void {
    const dirs = new Map<string, Set<string>>();
    for (const p of paths) {
      const set = dirs.get(dirname(p)) ?? new Set<string>();
      set.add(basename(p));
      dirs.set(dirname(p), set);
    }
    for (const [dir, w] of this.#fileWatchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.#fileWatchers.delete(dir);
      }
    }
    for (const [dir, names] of dirs) {
      this.#watchedNames.set(dir, names);
      if (this.#fileWatchers.has(dir)) continue;
      try {
        // "..data" is how a mounted Secret volume swaps its files at once.
        const w = watch(dir, (_event, file) => {
          if (file === null || file === '..data' || this.#watchedNames.get(dir)?.has(file)) this.#reload();
        });
        w.on('error', (err) => this.#log.warn({ err, dir }, 'watch of referenced files failed'));
        this.#fileWatchers.set(dir, w);
      } catch (err) {
        this.#log.warn({ dir, err: (err as Error).message }, 'cannot watch referenced files');
      }
    }
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    for (const w of this.#fileWatchers.values()) w.close();
    this.#fileWatchers.clear();
    await this.#loading;
  }

  synced(): boolean {
    return this.#synced;
  }

  current(): BuildInput {
    return this.#input;
  }

  onChange(listener: (change: SourceChange) => void): () => void {
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
    const r = await this.#loader.load(resolve(this.#o.path), this.#baseDir);
    if (r.problems.length > 0) {
      this.#log.warn({ problems: r.problems.map(formatProblem) }, 'configuration rejected; the previous routes keep serving');
      this.#o.onInvalid?.(r.problems);
      return;
    }
    this.#input = r.input ?? emptyInput;
    this.#watchFiles(r.paths);
    // The files are re-read whole: any object may have changed.
    for (const l of this.#listeners) l({ all: true });
  }
}
