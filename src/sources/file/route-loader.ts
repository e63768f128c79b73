// Reading and checking the route file is the file source's slowest step (YAML parsing and schema validation of
// every route): a loader decides where it runs. The default runs here and hands the objects over; the build
// thread's loader (controller/thread-builder.ts) runs it in the thread, which keeps the objects for its builds.
import type { SpecValidator } from '../../api/validate.ts';
import { emptyInput, type BuildInput } from '../../dag/input.ts';
import type { ConfigProblem } from '../../errors.ts';
import { loadRoutes } from './load-routes.ts';
import { readReferencedFiles } from './referenced-files.ts';

export interface LoadedRoutes {
  readonly problems: readonly ConfigProblem[];
  /** Files the routes name (watched for changes). */
  readonly paths: readonly string[];
  /** The objects, when this loader hands them over (absent: the loader keeps them where the build runs). */
  readonly input?: BuildInput;
}

export interface RouteLoader {
  /** Reads the file or folder and every file its routes name (relative to baseDir); problems leave nothing loaded. */
  load(path: string, baseDir: string): Promise<LoadedRoutes>;
}

export function localRouteLoader(validate: SpecValidator): RouteLoader {
  return {
    async load(path, baseDir) {
      const r = await loadRoutes([path], validate);
      if (r.problems.length > 0) return { problems: r.problems, paths: [] };
      const { secrets, paths } = await readReferencedFiles(r.routes, baseDir);
      return { problems: [], paths, input: { ...emptyInput, routes: r.routes, secrets } };
    },
  };
}
