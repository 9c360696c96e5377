; Quarry chunk query for C. See crates/chunk/README.md.

(function_definition declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(function_definition declarator: (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))) @definition.function

(type_definition type: (struct_specifier body: (field_declaration_list)) declarator: (type_identifier) @name) @definition.struct
(type_definition type: (union_specifier body: (field_declaration_list)) declarator: (type_identifier) @name) @definition.struct
(type_definition type: (enum_specifier body: (enumerator_list)) declarator: (type_identifier) @name) @definition.enum
(translation_unit (struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct)
(translation_unit (union_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct)
(translation_unit (enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum)
(declaration type: (struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct)
(declaration type: (enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum)
