// Builds elements from data without ever parsing it as HTML: text always goes in as a Text node.

/**
 * h("button", {className: "primary", type: "button", onclick: fn}, "Save")
 * Props: className, hidden, checked, value, disabled, on* handlers, anything else as an attribute.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (["className", "hidden", "checked", "value", "disabled"].includes(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `node` with `children` (text or nodes). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
}
