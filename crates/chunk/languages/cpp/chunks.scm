; Quarry chunk query for C++. See crates/chunk/README.md.

; out-of-line member definitions: `void Foo::bar() {}` -> Foo::bar
(function_definition declarator: (function_declarator declarator: (qualified_identifier scope: (_) @receiver name: (_) @name))) @definition.method
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (qualified_identifier scope: (_) @receiver name: (_) @name)))) @definition.method
(function_definition declarator: (reference_declarator (function_declarator declarator: (qualified_identifier scope: (_) @receiver name: (_) @name)))) @definition.method
(template_declaration (function_definition declarator: (function_declarator declarator: (qualified_identifier scope: (_) @receiver name: (_) @name)))) @definition.method

(function_definition declarator: (function_declarator declarator: (_) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (_) @name))) @definition.function
(function_definition declarator: (reference_declarator (function_declarator declarator: (_) @name))) @definition.function
(template_declaration (function_definition declarator: (function_declarator declarator: (_) @name))) @definition.function

(class_specifier name: (_) @name body: (field_declaration_list)) @definition.class
(struct_specifier name: (_) @name body: (field_declaration_list)) @definition.struct
(union_specifier name: (_) @name body: (field_declaration_list)) @definition.struct
(enum_specifier name: (_) @name body: (enumerator_list)) @definition.enum
(template_declaration (class_specifier name: (_) @name body: (field_declaration_list))) @definition.class
(template_declaration (struct_specifier name: (_) @name body: (field_declaration_list))) @definition.struct

(namespace_definition name: (_) @name body: (declaration_list)) @scope
