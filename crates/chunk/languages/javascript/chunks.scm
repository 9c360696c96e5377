; Quarry chunk query for JavaScript (and JSX). See crates/chunk/README.md.

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (identifier) @name) @definition.class
(method_definition name: (_) @name) @definition.method

; class fields holding functions: `handle = () => {}`
(field_definition property: (property_identifier) @name value: [(arrow_function) (function_expression)]) @definition.method

; const foo = () => {} / const foo = function () {}
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(lexical_declaration (variable_declarator name: (identifier) @name value: (class))) @definition.class

; Foo.prototype.bar = function () {} / module.exports.baz = () => {}
(expression_statement (assignment_expression left: (member_expression object: (_) @receiver property: (property_identifier) @name) right: [(arrow_function) (function_expression)])) @definition.function

; `export` wrappers: the chunk includes the export keyword and the JSDoc above it.
(export_statement declaration: (function_declaration name: (identifier) @name)) @definition.function
(export_statement declaration: (generator_function_declaration name: (identifier) @name)) @definition.function
(export_statement declaration: (class_declaration name: (identifier) @name)) @definition.class
(export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]))) @definition.function
