// A fake Hugging Face Hub on 127.0.0.1 for tests: the endpoints @huggingface/hub (and huggingface_hub) call to
// resolve revisions, list files and download them, with the headers they rely on. Shared by io, data and
// tokenizer tests:
//   const hub = await startFakeHub({ repos: [{ repoId: 'org/tiny', sha: 'a'.repeat(40), files: { 'config.json': '{}' } }] });
//   await hubDownloadFile({ repoId: 'org/tiny', filename: 'config.json', hubUrl: hub.url, cacheDir });
//   await hub.close();
// Endpoints: GET /api/{models|datasets|spaces}/{id}[/revision/{rev}] (info with sha and siblings),
// GET /api/{type}s/{id}/tree/{rev}[/{dir}]?recursive=, POST /api/{type}s/{id}/paths-info/{rev},
// GET|HEAD /[datasets/|spaces/]{id}/resolve/{rev}/{path} (Range, ETag, X-Linked-Etag for LFS files, X-Repo-Commit).
// Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound) as the real Hub does.

import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  repoId: string;
  repoType?: 'model' | 'dataset' | 'space';
  /** The commit every revision name of this repo resolves to. */
  sha: string;
  files: Record<string, Uint8Array | string>;
  /** Extra branch/tag names besides `main` and `HEAD`. */
  revisions?: string[];
  /** If set, every request for this repo must send `Authorization: Bearer <token>` (else 401). */
  token?: string;
}

export interface FakeHub {
  url: string;
  /** Every request seen, in order. */
  requests: { method: string; url: string; auth: string | undefined }[];
  /** Make the next N requests answer 500 (simulates an outage). */
  failNext(n: number): void;
  close(): Promise<void>;
}

interface FileEntry {
  path: string;
  data: Buffer;
  oid: string; // git blob sha1
  lfs?: { oid: string; size: number; pointerSize: number };
}

const LFS_RE = /\.(safetensors|bin|parquet|arrow|gguf|pt|onnx|model)$/;

function entryOf(path: string, content: Uint8Array | string): FileEntry {
  const data = Buffer.from(typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
  const oid = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
  const e: FileEntry = { path, data, oid };
  if (LFS_RE.test(path)) e.lfs = { oid: createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 };
  return e;
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function notFound(res: http.ServerResponse, code: string, message: string): void {
  send(res, 404, { error: message }, { 'X-Error-Code': code, 'X-Error-Message': message });
}

export async function startFakeHub(opts: { repos: FakeRepo[] }): Promise<FakeHub> {
  const repos = opts.repos.map((r) => ({
    ...r,
    repoType: r.repoType ?? 'model',
    entries: new Map(Object.entries(r.files).map(([p, c]) => [p, entryOf(p, c)])),
  }));
  type Repo = (typeof repos)[number];
  const requests: FakeHub['requests'] = [];
  let failures = 0;

  const findRepo = (type: string, rest: string): { repo: Repo; tail: string } | undefined => {
    for (const repo of repos) {
      if (`${repo.repoType}s` !== type) continue;
      if (rest === repo.repoId || rest.startsWith(`${repo.repoId}/`)) return { repo, tail: rest.slice(repo.repoId.length) };
    }
    return undefined;
  };

  const revisionOk = (repo: Repo, rev: string): boolean =>
    rev === 'main' || rev === 'HEAD' || rev === repo.sha || (repo.revisions ?? []).includes(rev);

  const treeEntry = (repo: Repo, e: FileEntry, expand: boolean): Record<string, unknown> => ({
    type: 'file',
    oid: e.oid,
    size: e.data.length,
    path: e.path,
    ...(e.lfs ? { lfs: e.lfs } : {}),
    ...(expand ? { lastCommit: { id: repo.sha, title: 'Upload', date: '2024-01-01T00:00:00.000Z' } } : {}),
  });

  const dirsOf = (repo: Repo): Set<string> => {
    const dirs = new Set<string>();
    for (const p of repo.entries.keys()) {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    return dirs;
  };

  const readBody = (req: http.IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', auth: req.headers.authorization });
    if (failures > 0) {
      failures--;
      send(res, 500, { error: 'Internal Error (simulated)' });
      return;
    }
    const rawSegs = url.pathname.split('/').filter((s) => s !== '');
    const segs = rawSegs.map(decodeURIComponent);
    const authOk = (repo: Repo): boolean => repo.token === undefined || req.headers.authorization === `Bearer ${repo.token}`;

    if (segs[0] === 'api' && (segs[1] === 'models' || segs[1] === 'datasets' || segs[1] === 'spaces')) {
      const found = findRepo(segs[1], segs.slice(2).join('/'));
      if (!found) return notFound(res, 'RepoNotFound', 'Repository not found');
      const { repo } = found;
      if (!authOk(repo)) return send(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'X-Error-Code': 'RepoNotFound' });
      // Decode segment by segment so a revision like refs%2Fpr%2F1 stays one segment.
      const tail = rawSegs.slice(2 + repo.repoId.split('/').length).map(decodeURIComponent);
      const [kind, rev, ...more] = tail;
      if (kind === undefined || kind === 'revision') {
        const r = rev ?? 'main';
        if (!revisionOk(repo, r)) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${r}`);
        return send(res, 200, {
          _id: `id-${repo.repoId}`,
          id: repo.repoId,
          private: repo.token !== undefined,
          sha: repo.sha,
          lastModified: '2024-01-01T00:00:00.000Z',
          downloads: 0,
          likes: 0,
          gated: false,
          tags: [],
          siblings: [...repo.entries.keys()].sort().map((rfilename) => ({ rfilename })),
        });
      }
      if (rev === undefined || !revisionOk(repo, rev)) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const expand = url.searchParams.get('expand') === 'true';
      if (kind === 'tree' && req.method === 'GET') {
        const dir = more.join('/');
        const recursive = url.searchParams.get('recursive') === 'true';
        const under = (p: string): boolean => (dir === '' ? true : p.startsWith(`${dir}/`));
        const depthOk = (p: string): boolean => recursive || !p.slice(dir === '' ? 0 : dir.length + 1).includes('/');
        const out: Record<string, unknown>[] = [];
        for (const d of [...dirsOf(repo)].sort()) if (under(d) && depthOk(d)) out.push({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d });
        for (const e of [...repo.entries.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
          if (under(e.path) && depthOk(e.path)) out.push(treeEntry(repo, e, expand));
        }
        if (dir !== '' && out.length === 0) return notFound(res, 'EntryNotFound', `${dir} does not exist`);
        return send(res, 200, out);
      }
      if (kind === 'paths-info' && req.method === 'POST') {
        const raw = await readBody(req);
        let paths: string[] = [];
        let exp = false;
        try {
          const j = JSON.parse(raw) as { paths?: string[]; expand?: boolean };
          paths = j.paths ?? [];
          exp = j.expand === true;
        } catch {
          const form = new URLSearchParams(raw);
          paths = form.getAll('paths');
          exp = form.get('expand') === 'True' || form.get('expand') === 'true';
        }
        const dirs = dirsOf(repo);
        const out: Record<string, unknown>[] = [];
        for (const p of paths) {
          const e = repo.entries.get(p);
          if (e) out.push(treeEntry(repo, e, exp));
          else if (dirs.has(p)) out.push({ type: 'directory', oid: '0'.repeat(40), size: 0, path: p });
        }
        return send(res, 200, out);
      }
      return notFound(res, 'EntryNotFound', `unknown endpoint ${url.pathname}`);
    }

    // /[datasets/|spaces/]{id}/resolve/{rev}/{path}
    const typed = segs[0] === 'datasets' || segs[0] === 'spaces';
    const type = typed ? segs[0]! : 'models';
    const rest = (typed ? segs.slice(1) : segs).join('/');
    const at = rest.indexOf('/resolve/');
    if (at === -1 || (req.method !== 'GET' && req.method !== 'HEAD')) return notFound(res, 'EntryNotFound', `unknown endpoint ${url.pathname}`);
    const found = findRepo(type, rest.slice(0, at));
    if (!found) return notFound(res, 'RepoNotFound', 'Repository not found');
    const { repo } = found;
    if (!authOk(repo)) return send(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'X-Error-Code': 'RepoNotFound' });
    // The revision is one URL segment (a branch with '/' arrives %2F-encoded), the rest is the file path.
    const rawTail = url.pathname.slice(url.pathname.indexOf('/resolve/') + '/resolve/'.length);
    const slash = rawTail.indexOf('/');
    const rev = decodeURIComponent(rawTail.slice(0, slash));
    const file = rawTail.slice(slash + 1).split('/').map(decodeURIComponent).join('/');
    if (!revisionOk(repo, rev)) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const e = repo.entries.get(file);
    if (!e) return notFound(res, 'EntryNotFound', `${file} does not exist on "${rev}"`);

    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: `"${e.lfs?.oid ?? e.oid}"`,
      'X-Repo-Commit': repo.sha,
    };
    if (e.lfs) {
      headers['X-Linked-Etag'] = `"${e.lfs.oid}"`;
      headers['X-Linked-Size'] = String(e.data.length);
    }
    const size = e.data.length;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (range[1] !== '' || range[2] !== '')) {
      let start: number;
      let end: number;
      if (range[1] === '') {
        start = Math.max(0, size - Number(range[2]));
        end = size - 1;
      } else {
        start = Number(range[1]);
        end = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': String(end - start + 1) });
      res.end(req.method === 'HEAD' ? undefined : e.data.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(size) });
    res.end(req.method === 'HEAD' ? undefined : e.data);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(n: number) {
      failures = n;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
