/* The .net grammar: a pure, location-tracking parser that builds the syntax tree. */
%code requires {
#include "ast.h"
#include "parse_state.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
typedef struct { cnn_stmt *first, *last; } cnn_stmt_list;
typedef struct { cnn_arg *first, *last; } cnn_arg_list;
}

%define api.pure full
%define parse.error custom
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {cnn_parse_state *st}

%union {
    const char *text;
    cnn_arg *arg;
    cnn_stmt *stmt;
    cnn_arg_list args;
    cnn_stmt_list stmts;
}

%code {
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "lexer.h"

/* A token's place and span (one line: tokens never hold a newline). */
static cnn_loc at(YYLTYPE l)
{
    int len = l.last_line == l.first_line ? l.last_column - l.first_column + 1 : 1;
    return (cnn_loc){l.first_line, l.first_column, len > 0 ? len : 1};
}
static void yyerror(YYLTYPE *loc, yyscan_t scanner, cnn_parse_state *st, const char *msg);
static void *node(cnn_parse_state *st, size_t size);
#define NEW(T) ((T *)node(st, sizeof(T)))
#define CHECK(p) do { if (!(p)) YYNOMEM; } while (0)
}

%token <text> WORD "name" NUMBER "number" DIMS "dimensions"
%token TRAIN "train" NL "end of line" ERROR "invalid token"
%type <arg> arg
%type <args> args
%type <stmt> stmt opt_stmt
%type <stmts> block_list

%%

file
    : %empty
    | file NL
    | file ';'
    | file stmt term              { if (st->ast->first) {
                                        cnn_stmt *s = st->ast->first;
                                        while (s->next) s = s->next;
                                        s->next = $2;
                                    } else st->ast->first = $2; }
    | file train_block
    /* A statement with a syntax error is dropped up to its end, and parsing goes on: one run
     * reports every error (the checks after parsing then stop at shapes, see ir.c). */
    | file error term             { yyerrok; }
    ;

term: NL | ';' ;

train_block
    : TRAIN                       { st->in_block = 1; st->block_loc = at(@1); }
      opt_newlines '{' block_list opt_stmt '}'
                                  { cnn_stmt *s = NEW(cnn_stmt); CHECK(s);
                                    s->word = "train"; s->loc = at(@1);
                                    cnn_stmt_list body = $5;
                                    if ($6) { if (body.last) body.last->next = $6; else body.first = $6; }
                                    s->body = body.first;
                                    st->in_block = 0;
                                    cnn_stmt **tail = &st->ast->first;
                                    while (*tail) tail = &(*tail)->next;
                                    *tail = s; }
    ;

opt_newlines: %empty | opt_newlines NL ;

block_list
    : %empty                      { $$.first = $$.last = NULL; }
    | block_list NL               { $$ = $1; }
    | block_list ';'              { $$ = $1; }
    | block_list stmt term        { $$ = $1;
                                    if ($$.last) $$.last->next = $2; else $$.first = $2;
                                    $$.last = $2; }
    | block_list error term       { $$ = $1; yyerrok; }
    ;

opt_stmt: %empty { $$ = NULL; } | stmt { $$ = $1; } ;

stmt
    : WORD args                   { $$ = NEW(cnn_stmt); CHECK($$);
                                    $$->word = $1; $$->loc = at(@1); $$->args = $2.first; }
    /* NAME = layer ...: the layer's output, named for later statements to read */
    | WORD '=' WORD args          { $$ = NEW(cnn_stmt); CHECK($$);
                                    $$->label = $1; $$->label_loc = at(@1);
                                    $$->word = $3; $$->loc = at(@3); $$->args = $4.first; }
    ;

args
    : %empty                      { $$.first = $$.last = NULL; }
    | args arg                    { $$ = $1;
                                    if ($$.last) $$.last->next = $2; else $$.first = $2;
                                    $$.last = $2; }
    ;

arg
    : NUMBER                      { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_NUMBER; $$->text = $1; $$->loc = at(@1); }
    | DIMS                        { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_DIMS; $$->text = $1; $$->loc = at(@1); }
    | WORD                        { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_WORD; $$->text = $1; $$->loc = at(@1); }
    | WORD '=' NUMBER             { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_NUMBER; $$->text = $3; $$->loc = at(@3);
                                    $$->key = $1; $$->key_loc = at(@1); }
    | WORD '=' DIMS               { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_DIMS; $$->text = $3; $$->loc = at(@3);
                                    $$->key = $1; $$->key_loc = at(@1); }
    | WORD '=' WORD               { $$ = NEW(cnn_arg); CHECK($$); $$->kind = CNN_ARG_WORD; $$->text = $3; $$->loc = at(@3);
                                    $$->key = $1; $$->key_loc = at(@1); }
    ;

%%

static void *node(cnn_parse_state *st, size_t size)
{
    return cnn_arena_alloc(st->arena, size);
}

static void yyerror(YYLTYPE *loc, yyscan_t scanner, cnn_parse_state *st, const char *msg)
{
    (void)scanner;
    cnn_error(st->diag, at(*loc), "%s", msg);
}

/* The token as the user wrote it, for "unexpected ..." messages. */
static void describe(cnn_parse_state *st, yysymbol_kind_t sym, YYLTYPE loc, char *out, size_t cap)
{
    switch (sym) {
    case YYSYMBOL_YYEOF: snprintf(out, cap, "end of file"); return;
    case YYSYMBOL_NL: snprintf(out, cap, "end of line"); return;
    case YYSYMBOL_WORD: case YYSYMBOL_NUMBER: case YYSYMBOL_DIMS: case YYSYMBOL_TRAIN: {
        size_t len;
        const char *line = cnn_source_line(st->src, loc.first_line, &len);
        int n = loc.last_column - loc.first_column + 1;
        const char *kind = sym == YYSYMBOL_WORD ? "name" : sym == YYSYMBOL_TRAIN ? "keyword"
                         : sym == YYSYMBOL_NUMBER ? "number" : "dimensions";
        if (line && loc.first_column >= 1 && (size_t)(loc.first_column - 1 + n) <= len)
            snprintf(out, cap, "%s '%.*s'", kind, n, line + loc.first_column - 1);
        else
            snprintf(out, cap, "%s", kind);
        return;
    }
    default: snprintf(out, cap, "%s", yysymbol_name(sym)); return;
    }
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, cnn_parse_state *st)
{
    (void)scanner;
    yysymbol_kind_t got = yypcontext_token(ctx);
    YYLTYPE loc = *yypcontext_location(ctx);
    if (st->lex_error) { /* the scanner already said what is wrong with this token */
        st->lex_error = 0;
        return 0;
    }
    if (got == YYSYMBOL_YYEOF && st->in_block) {
        cnn_error(st->diag, st->block_loc, "unterminated 'train {' block: no '}' before the end of the file");
        return 0;
    }
    if (got == YYSYMBOL_TRAIN && st->in_block) {
        cnn_error(st->diag, at(loc), "'train' blocks cannot be nested");
        st->nested_blocks++; /* its '}' must not close the outer block */
        return 0;
    }
    if (!st->in_block && strcmp(yysymbol_name(got), "'}'") == 0) {
        cnn_error(st->diag, at(loc), "unexpected '}' outside a 'train { }' block");
        return 0;
    }
    yysymbol_kind_t expected[8];
    int n = yypcontext_expected_tokens(ctx, expected, 8);
    char what[96];
    describe(st, got, loc, what, sizeof what);
    int brace_expected = 0;
    for (int i = 0; i < n; i++)
        brace_expected |= strcmp(yysymbol_name(expected[i]), "'{'") == 0;
    if (brace_expected)
        cnn_error(st->diag, at(loc), "expected '{' after 'train', got %s", what);
    else if (n >= 1 && n <= 3) {
        char list[128] = "";
        for (int i = 0; i < n; i++) {
            char one[40];
            snprintf(one, sizeof one, "%s%s", i == 0 ? "" : (i == n - 1 ? " or " : ", "),
                     expected[i] == YYSYMBOL_NL ? "end of line" : yysymbol_name(expected[i]));
            strncat(list, one, sizeof list - strlen(list) - 1);
        }
        cnn_error(st->diag, at(loc), "unexpected %s, expected %s", what, list);
    } else if (got == YYSYMBOL_NUMBER || got == YYSYMBOL_DIMS)
        cnn_error(st->diag, at(loc), "unexpected %s: a statement starts with a name (like 'conv')", what);
    else
        cnn_error(st->diag, at(loc), "unexpected %s", what);
    return 0;
}

int cnn_parse_source(const cnn_source *src, cnn_arena *arena, cnn_ast *ast, cnn_diag *d)
{
    cnn_parse_state st = {.src = src, .arena = arena, .diag = d, .ast = ast, .line = 1, .col = 1};
    ast->first = NULL;
    yyscan_t scanner;
    if (yylex_init_extra(&st, &scanner))
        return cnn_error(d, (cnn_loc){0, 0, 0}, "out of memory");
    if (src->len > INT_MAX - 2) {
        yylex_destroy(scanner);
        return cnn_error(d, (cnn_loc){0, 0, 0}, "the file is larger than 2 GiB");
    }
    /* Flex scans a copy that ends in two NULs; ours, so that nothing leaks when it runs out
     * of memory half way (yy_scan_bytes would allocate it, then fail on the next). */
    char *volatile copy = malloc(src->len + 2);
    YY_BUFFER_STATE volatile buf = NULL;
    if (!copy || setjmp(st.fatal)) { /* the scanner ran out of memory: YY_FATAL_ERROR */
        if (buf)
            yy_delete_buffer(buf, scanner);
        yylex_destroy(scanner);
        free(copy);
        return cnn_error(d, (cnn_loc){0, 0, 0}, "out of memory while reading the file");
    }
    memcpy(copy, src->text, src->len);
    copy[src->len] = copy[src->len + 1] = '\0';
    buf = yy_scan_buffer(copy, src->len + 2, scanner);
    int rc = yyparse(scanner, &st);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    free(copy);
    if (rc == 2 || (rc != 0 && !d->failed))
        cnn_error(d, (cnn_loc){0, 0, 0}, "out of memory while parsing");
    return d->failed ? -1 : 0;
}
