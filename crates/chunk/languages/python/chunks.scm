; Quarry chunk query for Python. See crates/chunk/README.md for the capture contract.

(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class

; Decorated definitions: the chunk starts at the first decorator.
(decorated_definition definition: (function_definition name: (identifier) @name)) @definition.function
(decorated_definition definition: (class_definition name: (identifier) @name)) @definition.class
