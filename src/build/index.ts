/** `lading/build`: Dockerfiles to OCI images without a daemon (RUN steps through runc, a step cache). */
export { build, exportImage, defaultCacheDir, type BuildOptions, type BuildResult, type BuildEvent } from './builder.js'
export { parseDockerfile, type Dockerfile, type Instruction } from './dockerfile/parse.js'
