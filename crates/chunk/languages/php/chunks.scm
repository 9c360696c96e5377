; Quarry chunk query for PHP. See crates/chunk/README.md.

(function_definition name: (name) @name) @definition.function
(method_declaration name: (name) @name body: (compound_statement)) @definition.method
(class_declaration name: (name) @name) @definition.class
(interface_declaration name: (name) @name) @definition.interface
(trait_declaration name: (name) @name) @definition.trait
(enum_declaration name: (name) @name) @definition.enum
(namespace_definition name: (_) @name body: (compound_statement)) @scope
