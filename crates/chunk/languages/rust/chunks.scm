; Quarry chunk query for Rust.
; Captures: @definition.<kind> (the node that becomes a chunk), @name (its
; symbol), @receiver (optional qualifier), @scope (a namespace that only
; qualifies nested names). See crates/chunk/README.md.

(function_item name: (identifier) @name) @definition.function

(struct_item name: (type_identifier) @name) @definition.struct
(union_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(trait_item name: (type_identifier) @name) @definition.trait

; `impl Type`, `impl<T> Type<T>`, `impl Trait for path::Type` -> named after the type.
(impl_item type: (type_identifier) @name) @definition.impl
(impl_item type: (generic_type type: (type_identifier) @name)) @definition.impl
(impl_item type: (scoped_type_identifier name: (type_identifier) @name)) @definition.impl
(impl_item type: (generic_type type: (scoped_type_identifier name: (type_identifier) @name))) @definition.impl
(impl_item type: (_) @name) @definition.impl

(macro_definition name: (identifier) @name) @definition.function

(mod_item name: (identifier) @name body: (declaration_list)) @scope
