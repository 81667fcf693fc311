/**
 * The one-call copy: open the source and the destination, copy, close both. It is what the CLI's
 * `lading copy` runs and what a program calls; copyImage (./copy.ts) stays the engine for callers
 * that hold open ends already.
 *
 * Contract:
 * - Both ends are closed on every path: success, failure, and abort. A destination closed
 *   before its commit removes what it made (ImageDestination.close), so an aborted copy leaves
 *   the destination as it was, or, for a layout that existed, with verified blobs only.
 * - `signal`: aborting closes both ends, which stops their reads and writes; the returned
 *   promise then rejects with the signal's reason once both are closed (not before: a caller
 *   exiting right after it finds nothing of the copy still running).
 */
import { LadingError } from '../errors.js'
import { openDestination, openSource } from '../transport/open.js'
import { parseReference } from '../transport/reference.js'
import type { ImageDestination, ImageReference, ImageSource, TransportOptions } from '../transport/types.js'
import { copyImage, type CopyOptions, type CopyResult } from './copy.js'

export interface CopyCallOptions extends CopyOptions {
  /** Stops the copy: both ends are closed and the copy rejects with the signal's reason. */
  signal?: AbortSignal
  /** How to open the source (registry credentials, TLS, spool directory...). */
  sourceOptions?: TransportOptions
  /** How to open the destination. */
  destinationOptions?: TransportOptions
}

/** Copy the image `from` names to `to` (references as strings, e.g. 'docker://busybox', or parsed). */
export async function copy(from: string | ImageReference, to: string | ImageReference, options: CopyCallOptions = {}): Promise<CopyResult> {
  const { signal, sourceOptions = {}, destinationOptions = {}, ...copyOptions } = options
  const srcRef = typeof from === 'string' ? parseReference(from) : from
  const destRef = typeof to === 'string' ? parseReference(to) : to
  signal?.throwIfAborted()
  // A registry destination is opened beside the source: opening it only starts its connection
  // and ping, which then overlap the source's reads. Others are opened once the source is.
  const earlyDest = destRef.transport === 'docker' ? openDestination(destRef, destinationOptions) : undefined
  earlyDest?.catch(() => {
    /* awaited below */
  })
  // Its first request goes out before the source is read (one turn of the event loop runs the
  // promise chain up to the socket's connect): the reads then overlap the round trip.
  if (earlyDest) await new Promise<void>((resolve) => setImmediate(resolve))
  let src: ImageSource | undefined
  let dest: ImageDestination | undefined
  const closeBoth = async (): Promise<void> => {
    const destClosing =
      dest?.close() ??
      earlyDest?.then(
        (d) => d.close(),
        () => {},
      )
    await Promise.allSettled([src?.close(), destClosing])
  }
  let aborted: Promise<void> | undefined
  const onAbort = (): void => {
    aborted ??= closeBoth()
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    src = await openSource(srcRef, sourceOptions)
    signal?.throwIfAborted()
    dest = await (earlyDest ?? openDestination(destRef, destinationOptions))
    signal?.throwIfAborted()
    return await copyImage(src, dest, copyOptions)
  } catch (e) {
    // An abort makes the ends fail under the copy: the abort is the cause to report, not the
    // closed stream it left behind.
    if (signal?.aborted) throw abortReason(signal)
    throw e
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await aborted
    await closeBoth()
  }
}

function abortReason(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new LadingError('UNSUPPORTED', `copy aborted${reason === undefined ? '' : `: ${String(reason)}`}`)
}
