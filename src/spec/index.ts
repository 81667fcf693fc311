/** The spec model: types, media types, strict parsers, validators, platforms, tags, conversion. */
export * from './types.js'
export * from './media-types.js'
export * from './json-pointer.js'
export * from './parse.js'
export * from './validate.js'
export * from './platform.js'
export * from './ref-name.js'
export * from './convert.js'
