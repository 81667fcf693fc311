/** `lading raw runtime-config` against `umoci raw runtime-config` for each Config.User form. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { requireTool } from '../helpers/tools.js'
import { ladingOk, runOk } from '../helpers/cli.js'
import { tempDir } from '../fixtures/temp.js'

test(
  'process.user and HOME equal umoci raw runtime-config for every Config.User form (numeric user: no additionalGids, by design)',
  { timeout: 60_000 },
  async (t) => {
    if (!requireTool(t, 'umoci')) return
    const dir = tempDir(t)
    const rootfs = path.join(dir, 'rootfs')
    await fsp.mkdir(path.join(rootfs, 'etc'), { recursive: true })
    await fsp.writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nsvc:x:500:600:svc:/srv:/bin/sh\n')
    await fsp.writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nsvc:x:600:svc\nextra:x:700:svc\n')
    const layout = path.join(dir, 'L')
    runOk('umoci', ['init', '--layout', layout])
    runOk('umoci', ['new', '--image', `${layout}:t`])
    for (const user of ['svc', '500', 'svc:extra', '500:700', 'svc:700', '500:extra', '']) {
      runOk('umoci', ['config', '--image', `${layout}:t`, '--config.user', user, '--config.cmd', '/bin/sh'])
      const u = path.join(dir, 'u.json')
      const l = path.join(dir, 'l.json')
      runOk('umoci', ['raw', 'runtime-config', '--image', `${layout}:t`, '--rootfs', rootfs, u])
      ladingOk(['raw', 'runtime-config', '--image', `${layout}:t`, '--rootfs', rootfs, l])
      const a = JSON.parse(await fsp.readFile(u, 'utf8')).process
      const b = JSON.parse(await fsp.readFile(l, 'utf8')).process
      const home = (env: string[]) => env.filter((e) => e.startsWith('HOME='))
      assert.deepEqual(home(b.env), home(a.env), user)
      if (/^\d+$/.test(user)) {
        // conversion.md §Config.User: SHOULD NOT set additionalGids for a numeric user; umoci does.
        assert.deepEqual({ uid: b.user.uid, gid: b.user.gid }, { uid: a.user.uid, gid: a.user.gid }, user)
        assert.equal(b.user.additionalGids, undefined)
      } else {
        assert.deepEqual(b.user, a.user, user)
      }
    }
  },
)
