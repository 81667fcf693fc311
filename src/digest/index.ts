/** `lading/digest`: digests (sha256, sha512) and the one verifying stream. */
export * from './digest.js'
export * from './verify.js'
