/**
 * The same Dockerfiles built by `lading build` and by `buildah bud --storage-driver vfs` (Debian's
 * buildah 1.28) on the Debian fixture image: the root filesystems must be equal path by path
 * (type, mode, owner, size, content, link target, xattrs; not times) and the configs must agree on
 * Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal, Healthcheck.
 * buildah 1.28 predates heredoc support: the heredoc case is compared with buildah building the
 * equivalent Dockerfile without heredocs.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test, type TestContext } from 'node:test'
import { debianFixtures } from '../fixtures/debian.js'
import { ladingOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { buildahBuild, comparableConfig, compareTrees, imageConfig, ladingBuildOk, rootfsTree } from './helpers.js'
import { writeTree, type TreeFile } from '../fixtures/write-tree.js'
import { tempDir } from '../fixtures/temp.js'

const BASE = 'oci:/var/tmp/lading-fixtures/layout:minbase'

interface Case {
  files: Record<string, TreeFile>
  dockerfile: string
  /** What buildah builds instead, when it cannot parse `dockerfile`. */
  buildahDockerfile?: string
  args?: string[]
  buildahArgs?: string[]
  /** Files only buildah's context gets (what the heredocs make). */
  buildahFiles?: Record<string, string>
  setup?: (ctx: string) => void
}

/** One buildah storage for the whole file (the base image is pulled into it once), removed at the end. */
const buildahRoot = tempDir({ after }, { base: '/var/tmp', prefix: 'lading-build-buildah-' })

async function compare(t: TestContext, c: Case): Promise<void> {
  if (!requireTool(t, 'buildah') || !requireTool(t, 'runc')) return
  if (process.getuid?.() !== 0) { t.skip('needs root (buildah with vfs, runc)'); return }
  const fx = debianFixtures(t)
  if (!fx) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { ...c.files, Dockerfile: c.dockerfile })
  c.setup?.(ctx)
  ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/lading:img`, ...(c.args ?? []), ctx])
  const bctx = path.join(dir, 'bctx')
  fs.cpSync(ctx, bctx, { recursive: true, verbatimSymlinks: true })
  if (c.buildahDockerfile) fs.writeFileSync(path.join(bctx, 'Dockerfile'), c.buildahDockerfile)
  if (c.buildahFiles) writeTree(bctx, c.buildahFiles)
  if (c.buildahArgs?.includes('docker')) {
    // buildah's docker-format image keeps Healthcheck only outside an OCI layout (its own
    // conversion drops it): take its docker-archive, and lading copy (config bytes kept) to OCI.
    buildahBuild(buildahRoot, ['-q', '-t', `docker-archive:${dir}/buildah.tar:img:latest`, ...(c.args ?? []), ...c.buildahArgs, bctx])
    ladingOk(['copy', `docker-archive:${dir}/buildah.tar`, `oci:${dir}/buildah:img`])
  } else {
    buildahBuild(buildahRoot, ['-q', '-t', `oci:${dir}/buildah:img`, ...(c.args ?? []), ...(c.buildahArgs ?? []), bctx])
  }
  const a = await rootfsTree(`${dir}/lading`, 'img', path.join(dir, 'ra'))
  const b = await rootfsTree(`${dir}/buildah`, 'img', path.join(dir, 'rb'))
  assert.deepEqual(compareTrees(a, b), [])
  assert.deepEqual(comparableConfig(await imageConfig(`${dir}/lading`, 'img')), comparableConfig(await imageConfig(`${dir}/buildah`, 'img')))
}

test('interop: base image from scratch with ADD rootfs.tar.xz and CMD', async (t) => {
  await compare(t, {
    files: {},
    dockerfile: 'FROM scratch\nADD rootfs.tar.xz /\nCMD ["bash"]\n',
    setup: (ctx) => {
      // A slice of the Debian rootfs (numeric owners, xattrs), xz-compressed as base images ship it.
      execFileSync('tar', ['--numeric-owner', '--xattrs', '-C', '/var/tmp/lading-fixtures/rootfs', '-cf', path.join(ctx, 'rootfs.tar'), './bin', './lib', './etc', './usr/sbin', './var/lib/dpkg/status'])
      execFileSync('xz', ['-T2', '-1', path.join(ctx, 'rootfs.tar')])
    },
  })
})

test('interop: multi-stage build with COPY --from, --chown and --chmod', async (t) => {
  await compare(t, {
    files: { 'src/main.sh': '#!/bin/sh\necho main\n', 'src/lib/util.sh': 'util\n', 'notes.txt': 'notes\n' },
    dockerfile: [
      `FROM ${BASE} AS build`,
      'COPY src /work/',
      'RUN mkdir -p /out && cp -a /work/. /out/ && echo built > /out/stamp && chmod 0750 /out/main.sh',
      `FROM ${BASE}`,
      'COPY --from=build /out /app',
      'COPY --from=build --chown=daemon:root /out/stamp /opt/stamp',
      'COPY --chmod=0600 notes.txt /opt/',
      'COPY --from=0 /work/lib/util.sh /usr/local/bin/util',
      'CMD ["/app/main.sh"]',
    ].join('\n'),
  })
})

test('interop: RUN deleting files of lower layers (whiteouts), USER and WORKDIR changes', async (t) => {
  await compare(t, {
    files: { 'a.txt': 'a\n' },
    dockerfile: [
      `FROM ${BASE}`,
      'RUN rm -rf /usr/share/doc /usr/share/man && rm /etc/issue.net && mkdir -p /data/sub && echo x > /data/sub/f',
      'WORKDIR /srv/app',
      'COPY a.txt .',
      'RUN rm -rf /data/sub && touch relative-file',
      'USER daemon',
      'WORKDIR sub',
      'RUN id -u > /tmp/uid || true',
      'USER root:daemon',
      'ENV HOME=/srv',
    ].join('\n'),
  })
})

test('interop: heredocs (buildah builds the equivalent without heredocs)', async (t) => {
  await compare(t, {
    files: {},
    dockerfile: [
      `FROM ${BASE}`,
      'ARG NAME=world',
      'RUN <<EOF',
      'mkdir -p /h',
      'echo "hello $NAME" > /h/greeting',
      'EOF',
      'COPY <<EOT /h/config.ini',
      '[main]',
      'name=${NAME}',
      'EOT',
      "COPY <<'RAW' /h/raw.txt",
      'literal ${NAME}',
      'RAW',
      'RUN cat <<EOF > /h/from-cat',
      'one',
      'two',
      'EOF',
    ].join('\n'),
    buildahDockerfile: [
      `FROM ${BASE}`,
      'ARG NAME=world',
      'RUN mkdir -p /h && echo "hello $NAME" > /h/greeting',
      'COPY config.ini /h/config.ini',
      'COPY raw.txt /h/raw.txt',
      'RUN printf "one\\ntwo\\n" > /h/from-cat',
    ].join('\n'),
    buildahFiles: { 'config.ini': '[main]\nname=world\n', 'raw.txt': 'literal ${NAME}\n' },
  })
})

test('interop: ARG scoping (global ARG in FROM, re-declared in a stage, build-arg overrides, platform ARGs)', async (t) => {
  await compare(t, {
    files: {},
    dockerfile: [
      'ARG BASE_TAG=minbase',
      'ARG GLOBAL_ONLY=g',
      'FROM oci:/var/tmp/lading-fixtures/layout:${BASE_TAG}',
      'ARG GLOBAL_ONLY',
      'ARG STAGE_ARG=default',
      'ARG OVERRIDDEN=old',
      'ARG TARGETARCH',
      'ENV FROM_ARG=${STAGE_ARG}-${OVERRIDDEN} GLOBAL=${GLOBAL_ONLY} UNSET=${NOT_DECLARED:-fallback} ALT=${STAGE_ARG:+set}',
      'RUN echo "$STAGE_ARG $OVERRIDDEN $GLOBAL_ONLY $TARGETARCH" > /args.txt',
      'LABEL arch=$TARGETARCH',
    ].join('\n'),
    args: ['--build-arg', 'OVERRIDDEN=new'],
  })
})

test('interop: .dockerignore with ** and ! exceptions, directory semantics of COPY', async (t) => {
  await compare(t, {
    files: {
      '.dockerignore': '# comment\n**/*.log\nsecret*\n!secret-ok.txt\nbuild/\n!build/keep\n',
      'app/a.txt': 'a', 'app/debug.log': 'log', 'app/deep/x/y.log': 'y', 'app/deep/x/z.txt': 'z',
      'secret.key': 'k', 'secret-ok.txt': 'ok', 'build/out.o': 'o', 'build/keep': 'keep', 'top.log': 't', 'file.txt': 'f',
    },
    dockerfile: [
      `FROM ${BASE}`,
      'COPY app /dst/app',
      'COPY . /ctx/',
      'COPY file.txt /single',
      'COPY *.txt /glob/',
      'COPY app/deep /existing-dir-not/',
    ].join('\n'),
  })
})

test('interop: config instructions (EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT, LABEL, SHELL)', async (t) => {
  await compare(t, {
    files: {},
    dockerfile: [
      `FROM ${BASE}`,
      'LABEL a=1 "b c"="d e"',
      'EXPOSE 80 53/udp',
      // buildah creates a missing VOLUME directory in the rootfs; BuildKit (docker build) and lading
      // do not (README: differences). Existing directories keep the trees comparable.
      'VOLUME /srv /var/log',
      'VOLUME ["/opt"]',
      'STOPSIGNAL SIGQUIT',
      'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD test -e /data',
      'SHELL ["/bin/bash", "-c"]',
      'RUN echo $0 > /shell.txt',
      'ENTRYPOINT ["/bin/echo"]',
      'CMD ["hello"]',
    ].join('\n'),
    // Healthcheck and Shell are Docker-format fields: buildah keeps them only with --format docker.
    buildahArgs: ['--format', 'docker'],
  })
})
