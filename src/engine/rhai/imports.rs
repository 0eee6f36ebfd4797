//! `import` for Rhai scripts: `.rhai` files under the task root, then under
//! `/opt/rhai` (a layer's shared modules), without the cycles that would take
//! the process down. Rhai evaluates an imported module while resolving it, so a
//! module that imports itself (directly or through others) recurses until the
//! stack overflows; these resolvers refuse the import that would close the cycle,
//! and any import nested deeper than [`MAX_NESTED_IMPORTS`], as a script error.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position};

/// Where `import` looks after the task root: a layer's shared modules.
const LAYER_MODULE_DIR: &str = "/opt/rhai";

/// Imports nested deeper than this are refused (a cycle through paths spelled
/// differently ends here too).
const MAX_NESTED_IMPORTS: usize = 32;

pub struct Imports {
    resolvers: ModuleResolversCollection,
    /// The imports being resolved, outermost first.
    chain: RefCell<Vec<String>>,
}

impl Imports {
    pub fn new(task_root: &Path) -> Self {
        let mut resolvers = ModuleResolversCollection::new();
        resolvers.push(FileModuleResolver::new_with_path(task_root));
        resolvers.push(FileModuleResolver::new_with_path(LAYER_MODULE_DIR));
        Imports {
            resolvers,
            chain: RefCell::new(Vec::new()),
        }
    }

    fn refuse(&self, path: &str, pos: Position) -> Option<Box<EvalAltResult>> {
        let chain = self.chain.borrow();
        let message = if chain.iter().any(|p| p == path) {
            let cycle: Vec<&str> = chain
                .iter()
                .skip_while(|p| *p != path)
                .map(String::as_str)
                .chain([path])
                .collect();
            format!("import cycle: {}", cycle.join(" → "))
        } else if chain.len() >= MAX_NESTED_IMPORTS {
            format!("imports nested deeper than {MAX_NESTED_IMPORTS}: {path}")
        } else {
            return None;
        };
        Some(Box::new(EvalAltResult::ErrorRuntime(message.into(), pos)))
    }
}

impl ModuleResolver for Imports {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Rc<Module>, Box<EvalAltResult>> {
        if let Some(refused) = self.refuse(path, pos) {
            return Err(refused);
        }
        self.chain.borrow_mut().push(path.to_owned());
        let module = self.resolvers.resolve(engine, source, path, pos);
        self.chain.borrow_mut().pop();
        module
    }
}
