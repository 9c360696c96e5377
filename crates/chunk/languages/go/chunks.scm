; Quarry chunk query for Go. See crates/chunk/README.md.

(function_declaration name: (identifier) @name) @definition.function

; methods are qualified by their receiver type: `(s *Server) Start` -> Server.Start
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [(type_identifier) @receiver
                                                          (pointer_type (type_identifier) @receiver)
                                                          (generic_type type: (type_identifier) @receiver)
                                                          (pointer_type (generic_type type: (type_identifier) @receiver))]))
  name: (field_identifier) @name) @definition.method
(method_declaration name: (field_identifier) @name) @definition.method

(type_declaration (type_spec name: (type_identifier) @name type: (struct_type))) @definition.struct
(type_declaration (type_spec name: (type_identifier) @name type: (interface_type))) @definition.interface
