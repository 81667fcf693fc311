/** `lading/run`: the local image store (layers unpacked once, shared) and containers run with runc. */
export { LocalStore, defaultStoreDir } from './store.js'
export { parseImageName } from './image-name.js'
export { pullImage, pushImage } from './images.js'
export { ensureLayers } from './layers.js'
export { prepareContainer, finishContainer, type RunRequest } from './run.js'
export type { RunOverrides } from './container-spec.js'
