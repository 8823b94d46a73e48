/// One segment file as its owner holds it: not a descriptor but the way to one, through the
/// `FileCache`, which opens it on use and may close it while it is idle.
struct CachedFile: Sendable {
    let cache: FileCache
    let key: FileCache.FileKey
    let path: String

    init(cache: FileCache, segment: UInt64, kind: FileCache.FileKey.Kind, path: String) {
        self.cache = cache
        self.key = FileCache.FileKey(segment: segment, kind: kind)
        self.path = path
    }

    /// The open file; `create` makes it if it does not exist (only a new segment's files may be made).
    func open(create: Bool = false) throws -> FileDescriptor {
        try cache.file(key, path: path, create: create)
    }
}
