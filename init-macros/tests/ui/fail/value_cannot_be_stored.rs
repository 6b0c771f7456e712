use std::rc::Rc;

use initkit::prelude::*;

#[init_step]
async fn load() -> Result<Rc<String>, StepError> {
    Ok(Rc::new(String::from("catalogue")))
}

fn main() {
    let _ = load;
}
