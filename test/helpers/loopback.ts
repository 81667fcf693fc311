/** An in-test HTTP server listening on 127.0.0.1, and a stop that does not wait for keep-alive connections. */
import type http from 'node:http'
import type net from 'node:net'

export interface Listening {
  /** 127.0.0.1:PORT */
  host: string
  port: number
  /** Closes every open connection, then the server. */
  stop(): Promise<void>
}

export async function listenOnLoopback(server: http.Server): Promise<Listening> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    host: `127.0.0.1:${port}`,
    port,
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
