/**
 * skopeo's `dir:` format (containers/image directory transport): a `version` file, the
 * top-level manifest as `manifest.json`, the manifests of an index's images as
 * `<hex>.manifest.json`, and every blob (config and layers) as a file named by its digest's hex.
 */
import path from 'node:path'
import { digestHex, type Digest } from '../../digest/digest.js'

export const VERSION_FILE = 'version'
export const VERSION_TEXT = 'Directory Transport Version: 1.1\n'
export const MANIFEST_FILE = 'manifest.json'

export function blobFile(dir: string, d: Digest): string {
  return path.join(dir, digestHex(d))
}
export function instanceManifestFile(dir: string, d: Digest): string {
  return path.join(dir, `${digestHex(d)}.manifest.json`)
}
