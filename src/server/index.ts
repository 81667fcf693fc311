/** `lading/server`: the registry server (distribution-spec v1.1) on per-repository OCI layouts. */
export { startServer, type ServerOptions, type RunningServer } from './server.js'
