/**
 * Tar and layer constants shared by the writer (tar-writer, diff, tar-directory) and the reader /
 * applier (tar-reader, apply). Defined once so both sides agree byte for byte.
 *
 * Sources: POSIX.1-2001 pax / ustar (IEEE Std 1003.1, "pax" utility, §ustar Interchange Format),
 * GNU tar's extensions (long names 'L', long links 'K', sparse 'S'), and image-spec layer.md
 * §Whiteouts for the whiteout names.
 */

/** Size of a tar header/data block. Every header and every file's data is padded to this. */
export const BLOCK_SIZE = 512
/** An archive ends with two all-zero blocks (POSIX ustar). GNU tar also pads to a 10 KiB record; we do not. */
export const END_OF_ARCHIVE_BLOCKS = 2

/** Type flags (the `typeflag` byte at offset 156). */
export const TypeFlag = {
  /** Regular file. */
  File: '0',
  /** Old-style regular file (pre-POSIX): NUL. Readers treat it as '0'. */
  FileOld: '\0',
  /** Hard link to `linkname` (a path earlier in the same archive, or already on disk). */
  Hardlink: '1',
  Symlink: '2',
  CharDevice: '3',
  BlockDevice: '4',
  Directory: '5',
  Fifo: '6',
  /** Contiguous file; treated as a regular file. */
  Contiguous: '7',
  /** pax extended header applying to the next entry. */
  PaxHeader: 'x',
  /** pax global extended header (applies to all following entries). */
  PaxGlobalHeader: 'g',
  /** GNU: the data of this entry is the long name of the next entry. */
  GnuLongName: 'L',
  /** GNU: the data of this entry is the long link name of the next entry. */
  GnuLongLink: 'K',
  /** GNU old sparse format. */
  GnuSparse: 'S',
} as const
export type TypeFlagValue = (typeof TypeFlag)[keyof typeof TypeFlag]

/** ustar header field offsets and lengths (POSIX ustar Interchange Format). */
export const Header = {
  name: { offset: 0, length: 100 },
  mode: { offset: 100, length: 8 },
  uid: { offset: 108, length: 8 },
  gid: { offset: 116, length: 8 },
  size: { offset: 124, length: 12 },
  mtime: { offset: 136, length: 12 },
  checksum: { offset: 148, length: 8 },
  typeflag: { offset: 156, length: 1 },
  linkname: { offset: 157, length: 100 },
  magic: { offset: 257, length: 6 },
  version: { offset: 263, length: 2 },
  uname: { offset: 265, length: 32 },
  gname: { offset: 297, length: 32 },
  devmajor: { offset: 329, length: 8 },
  devminor: { offset: 337, length: 8 },
  prefix: { offset: 345, length: 155 },
} as const

/** POSIX ustar magic "ustar\0" + version "00". */
export const USTAR_MAGIC = 'ustar\0'
export const USTAR_VERSION = '00'
/** GNU tar's (pre-POSIX) magic "ustar " + version " \0". */
export const GNU_MAGIC = 'ustar '
export const GNU_VERSION = ' \0'

/** Largest value an octal field holds: 7 digits + NUL for mode/uid/gid (8 bytes) = 0o7777777. */
export const MAX_OCTAL_ID = 0o7777777 // 2097151
/** 11 octal digits for size/mtime (12 bytes) = 8 GiB - 1. */
export const MAX_OCTAL_SIZE = 0o77777777777 // 8589934591

/** pax extended header keywords we read or write (POSIX pax §pax Extended Header). */
export const PaxKey = {
  Path: 'path',
  LinkPath: 'linkpath',
  Size: 'size',
  Uid: 'uid',
  Gid: 'gid',
  Uname: 'uname',
  Gname: 'gname',
  Mtime: 'mtime',
  Atime: 'atime',
  Ctime: 'ctime',
  /** Extended attributes, as written by GNU tar and star: `SCHILY.xattr.<name>` = raw value bytes. */
  XattrPrefix: 'SCHILY.xattr.',
  /** libarchive's encoding of xattrs (base64 values); read-only support. */
  LibarchiveXattrPrefix: 'LIBARCHIVE.xattr.',
  // GNU sparse formats 0.0/0.1/1.0 in pax headers.
  GnuSparseMajor: 'GNU.sparse.major',
  GnuSparseMinor: 'GNU.sparse.minor',
  GnuSparseName: 'GNU.sparse.name',
  GnuSparseRealSize: 'GNU.sparse.realsize',
  GnuSparseSize: 'GNU.sparse.size',
  GnuSparseNumBlocks: 'GNU.sparse.numblocks',
  GnuSparseOffset: 'GNU.sparse.offset',
  GnuSparseNumBytes: 'GNU.sparse.numbytes',
  GnuSparseMap: 'GNU.sparse.map',
} as const

/**
 * Whiteouts (image-spec layer.md §Whiteouts): an entry named `.wh.NAME` in a layer means NAME
 * (in a lower layer) is removed; `.wh..wh..opq` in a directory means the directory is opaque
 * (all lower-layer children are hidden, but not this layer's own entries).
 */
export const WHITEOUT_PREFIX = '.wh.'
export const WHITEOUT_OPAQUE = '.wh..wh..opq'
/** The "meta" prefix: layer.md reserves every `.wh.` name; `.wh..wh.` prefixes are AUFS metadata. */
export const WHITEOUT_META_PREFIX = '.wh..wh.'

/** Is this base name a whiteout marker (including the opaque marker)? */
export function isWhiteoutName(base: string): boolean {
  return base.startsWith(WHITEOUT_PREFIX)
}

/** The whiteout entry name for removing `base` (a base name, not a path). */
export function whiteoutNameFor(base: string): string {
  return WHITEOUT_PREFIX + base
}

/** File type bits of st_mode (POSIX <sys/stat.h>), for mapping lstat results to tar type flags. */
export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFIFO = 0o010000
export const S_IFSOCK = 0o140000
/** Permission bits stored in the tar mode field: rwx for all + setuid, setgid, sticky. */
export const MODE_PERM_MASK = 0o7777
