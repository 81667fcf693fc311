/**
 * `lading image ls|pull|push|rm`: local-store image verbs under one noun, as podman has them.
 * `lading tag` and `lading rm` keep acting on OCI layouts (umoci's verbs).
 */
import type { Command } from 'commander'
import { defineImages } from './images.js'
import { definePull } from './pull.js'
import { definePush } from './push.js'
import { defineRmi } from './rmi.js'

export function register(program: Command): void {
  const i = program.command('image').description('images of the local store: ls, pull, push, rm')
  defineImages(i.command('ls').alias('list'))
  definePull(i.command('pull'))
  definePush(i.command('push'))
  defineRmi(i.command('rm'))
}
