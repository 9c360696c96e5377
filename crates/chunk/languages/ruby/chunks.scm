; Quarry chunk query for Ruby. See crates/chunk/README.md.

(method name: (_) @name) @definition.function
(singleton_method name: (_) @name) @definition.method
(class name: (_) @name) @definition.class
(module name: (_) @name) @scope
